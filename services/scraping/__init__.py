"""The scraping service: search jobs, their results, the search worker, creator providers.

Rooms (the same in every service; see ``docs/architecture.md``):

* ``api.py`` — the app factory; ``routes/jobs.py`` — ``/jobs`` and its results;
* ``schemas.py`` — request/response models; ``errors.py`` — the error codes;
* ``service.py`` — ``JobService``: creation against billing quota (reserve, insert, give the
  hold back if the insert fails), one page of work per item, terminal states, sweeps, purges;
* ``repository.py`` — every SQL statement (jobs listing, dedupe + batch store, results page);
* ``handlers.py`` — search work items, purges on user/campaign deletion, the timeout sweeper;
  ``worker.py`` wires them;
* ``providers/`` (extra room) — the provider interface, the synthetic generator and the
  ScrapeCreators adapter; ``creators.py`` (extra room) — the one creator shape they return.
"""
