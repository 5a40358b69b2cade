"""Identity: users and their system data, Clerk webhooks, onboarding, admin, runtime config.

Rooms (the same in every service; see ``docs/architecture.md``):

* ``api.py`` — the app factory; ``routes/`` — ``/webhooks/clerk``, ``/me``, ``/admin``;
* ``schemas.py`` — request/response models; ``errors.py`` — the error codes;
* ``service/`` — use cases: users, Clerk deliveries, onboarding, runtime config, inspection;
* ``repository.py`` — every SQL statement (users, webhooks, admin reads, configuration);
* ``handlers.py`` — onboarding completed by ``billing.subscription.changed.v1``, and the purge
  of deleted users once every service has applied their deletion; ``worker.py`` wires them.
"""
