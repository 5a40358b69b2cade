"""Run and inspect the one Alembic history (used by ``scout migrate`` and the test harness)."""

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from shared.db import make_sync_engine, sqlalchemy_url
from shared.models import metadata

MIGRATIONS_DIR = Path(migrations.__file__).parent


def configure_context(context, connection: sa.Connection) -> None:
    """Options shared by migrations and drift checks (so both compare the same way)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )


def alembic_config(url: str, connection: sa.Connection | None = None) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused/none"))


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "-1") -> None:
    command.downgrade(alembic_config(url), revision)


def revision(url: str, message: str, rev_id: str | None = None) -> str:
    """Autogenerate the next revision from the models' difference to a database at head."""
    script = command.revision(
        alembic_config(url), message=message, autogenerate=True, rev_id=rev_id
    )
    return script.path


@dataclass
class Status:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: list[str]

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)


def status(url: str) -> Status:
    script = script_directory()
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    heads = tuple(script.get_heads())
    pending: list[str] = []
    for head in heads:
        for rev in script.iterate_revisions(head, current or "base"):
            if rev.revision not in current:
                pending.append(f"{rev.revision} {rev.doc}")
    return Status(current=tuple(current), heads=heads, pending=list(reversed(pending)))


def drift(url: str) -> list:
    """Differences between the models and the database (empty when they match)."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "target_metadata": metadata,
                    "compare_type": True,
                    "compare_server_default": True,
                },
            )
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
