"""SQL helpers migrations share. Migrations import only these, never application code."""

import sqlalchemy as sa
from alembic import op

UPDATED_AT_FUNCTION = "scout_set_updated_at"


def create_updated_at_function() -> None:
    op.execute(
        f"""
        CREATE FUNCTION {UPDATED_AT_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END $$
        """
    )


def drop_updated_at_function() -> None:
    op.execute(f"DROP FUNCTION {UPDATED_AT_FUNCTION}()")


def add_updated_at_trigger(table: str) -> None:
    """Keep ``updated_at`` true for every UPDATE, including raw SQL ones."""
    op.execute(
        f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {UPDATED_AT_FUNCTION}()"
    )


def row_columns() -> tuple[sa.Column, ...]:
    """``id``, ``created_at`` and ``updated_at``, as every Scout table has them."""
    return (
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def create_definer_functions(functions: dict[str, str]) -> None:
    """Trigger functions (name -> PL/pgSQL body) that run as their owner (SECURITY DEFINER),
    so a write from another service's role, or a cascade it starts, still keeps the rows the
    function maintains."""
    for name, body in functions.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
            f" SET search_path FROM CURRENT AS $${body}$$"
        )


def create_triggers(table: str, triggers: dict[str, tuple[str, str, str, str]]) -> None:
    """Triggers on ``table``: name -> (timing and events, transition tables, level and
    condition, function)."""
    for name, (when, referencing, level, function) in triggers.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} ON {table} {referencing} {level}"
            f" EXECUTE FUNCTION {function}()"
        )


def create_index_concurrently(name: str, definition: str) -> None:
    """``CREATE INDEX CONCURRENTLY IF NOT EXISTS name ON definition`` outside the migration's
    transaction, so writes go on while it builds; a rerun after an interrupted build is safe
    once the INVALID index it leaves is dropped (``drop_index_concurrently``)."""
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '5s'")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")
        op.execute("RESET lock_timeout")


def drop_index_concurrently(name: str) -> None:
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '5s'")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute("RESET lock_timeout")
