"""SQL helpers migrations share. Migrations import only these, never application code."""

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
