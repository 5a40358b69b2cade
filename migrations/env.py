"""Alembic environment: one history for the whole Scout database."""

from alembic import context

import shared.models  # noqa: F401  (registers every table on the metadata)
from shared.db import make_sync_engine
from tooling.migrate import configure_context

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure_context(context, connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_sync_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        configure_context(context, conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Scout migrations run online only (scout migrate upgrade).")
run_migrations_online()
