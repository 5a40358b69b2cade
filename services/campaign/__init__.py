"""The campaign service: campaigns, creator lists and list items, CSV export, dashboard.

Rooms (the same in every service; see ``docs/architecture.md``):

* ``api.py`` — the app factory; ``routes/`` — campaigns, lists, dashboard (parse, authorise,
  call the service, shape the response);
* ``schemas.py`` — request/response models; ``errors.py`` — the error codes;
* ``service.py`` — use cases: create against billing quota (reserve → insert + event →
  confirm, fail closed), one-step status transitions, soft delete + event; list item adds
  deduped within the request and against the list, changes and removals;
* ``repository/`` — every SQL statement (campaigns, lists, dashboard);
* ``handlers.py`` — purge on ``identity.user.deleted.v1``, reservation confirms, and the sweep
  that removes deleted campaigns once scraping has purged their jobs; ``worker.py`` wires them;
* ``export.py`` (extra room) — the streamed CSV (server-side cursor, constant memory).
"""
