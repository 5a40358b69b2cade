"""Scout's tooling: the ``scout`` CLI, the dev supervisor, embedded servers, migrations runner,
database roles, NATS credentials, and seed/perf/analyze.

Tooling drives the services from outside, so it may import them; nothing in ``shared`` or
``services`` imports tooling.
"""
