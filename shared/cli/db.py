"""``scout db``: connection and schema checks, and an inspection report."""

import psycopg
import typer

from shared.cli.output import console, err_console, print_json, print_table
from shared.db import libpq_url
from shared.models import OWNERSHIP, metadata
from shared.settings import get_settings

app = typer.Typer(help="Inspect and check the database.", no_args_is_help=True)


def _connect() -> psycopg.Connection:
    return psycopg.connect(libpq_url(get_settings().database_url), connect_timeout=5)


@app.command()
def check() -> None:
    """Fail unless the database answers and every Scout table is present."""
    try:
        with _connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            present = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            }
    except psycopg.Error as exc:
        err_console.print(f"[red]✗[/] cannot connect: {exc}")
        raise typer.Exit(1) from exc
    missing = sorted(set(metadata.tables) - present)
    console.print(f"[green]✓[/] connected (PostgreSQL {version})")
    if missing:
        err_console.print(
            f"[red]✗[/] missing tables: {', '.join(missing)} (run `scout migrate upgrade`)"
        )
        raise typer.Exit(1)
    console.print(f"[green]✓[/] all {len(metadata.tables)} tables present")


TABLES_SQL = """
SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid),
       pg_indexes_size(c.oid), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(%s)
ORDER BY c.relname
"""

INDEXES_SQL = """
SELECT s.relname, s.indexrelname, pg_relation_size(s.indexrelid), s.idx_scan, i.indexdef
FROM pg_stat_user_indexes s JOIN pg_indexes i
  ON i.schemaname = s.schemaname AND i.indexname = s.indexrelname
WHERE s.schemaname = current_schema() AND s.relname = ANY(%s)
ORDER BY s.relname, s.indexrelname
"""


@app.command()
def inspect(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    estimate: bool = typer.Option(
        False, "--estimate", help="Use planner row estimates instead of exact counts (big tables)."
    ),
) -> None:
    """Tables (owner, rows, sizes) and their indexes (size, scans, definition)."""
    names = sorted(metadata.tables)
    with _connect() as conn:
        tables = []
        for name, total, heap, index_size, estimated in conn.execute(TABLES_SQL, (names,)):
            rows = (
                estimated
                if estimate
                else conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            )
            tables.append(
                {
                    "table": name,
                    "owner": OWNERSHIP[name],
                    "rows": max(rows, 0),
                    "total_bytes": total,
                    "table_bytes": heap,
                    "index_bytes": index_size,
                }
            )
        indexes = [
            {"table": t, "index": i, "bytes": size, "scans": scans, "definition": definition}
            for t, i, size, scans, definition in conn.execute(INDEXES_SQL, (names,))
        ]
    if as_json:
        print_json({"tables": tables, "indexes": indexes})
        return
    print_table(
        "Tables",
        ["table", "owner", "rows", "total", "table", "indexes"],
        [
            (
                t["table"],
                t["owner"],
                t["rows"],
                _size(t["total_bytes"]),
                _size(t["table_bytes"]),
                _size(t["index_bytes"]),
            )
            for t in tables
        ],
    )
    print_table(
        "Indexes",
        ["table", "index", "size", "scans", "definition"],
        [
            (
                i["table"],
                i["index"],
                _size(i["bytes"]),
                i["scans"],
                i["definition"].split(" USING ")[-1],
            )
            for i in indexes
        ],
    )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
