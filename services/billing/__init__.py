"""Billing: plans, Stripe subscriptions and trials, usage quota that holds under concurrency.

Rooms (the same in every service; see ``docs/architecture.md``):

* ``api.py`` — the app factory; ``routes/`` — ``/plans``, ``/billing/status``,
  ``/billing/checkout``, ``/webhooks/stripe``;
* ``schemas.py`` — request/response models; ``errors.py`` — the error codes;
* ``service/`` — use cases: accounts and checkout, usage quota, Stripe subscriptions,
  webhooks, provisioning;
* ``repository/`` — every SQL statement (usage, accounts, subscriptions, webhooks);
* ``handlers.py`` — RPCs ``billing.usage.reserve`` / ``.release``; consumers for
  ``identity.user.created|deleted|onboarding.step_changed``, ``campaign.campaign.deleted`` and
  the terminal ``scraping.job.*`` events; scheduled expiry of holds, monthly reset, trial
  expiry and hourly Stripe reconciliation; ``worker.py`` wires them;
* ``stripe_api.py`` (extra room) — the Stripe client and the price ↔ plan mapping.
"""
