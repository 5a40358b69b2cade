"""Billing's use cases, one module per concern (the SQL they need is in ``repository/``):

* ``account.py`` — plans, the billing status, Stripe checkout, the intended plan;
* ``usage.py`` — the one implementation of quota (reserving IS the increment; release confirms
  the used part and gives back the rest; expiry and the monthly reset);
* ``subscriptions.py`` — Stripe subscription → rows, guarded by ``stripe_state_at`` (out of
  order), reconciliation and trial expiry;
* ``webhooks.py`` — Stripe deliveries: verified, claimed with a lease, applied once;
* ``provisioning.py`` — a user's billing rows created on sign-up, purged (Stripe cancelled) on
  deletion.
"""
