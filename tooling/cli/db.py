"""``scout db``: connection and schema checks, and an inspection report."""

import psycopg
import typer

from shared import retention
from shared.db import libpq_url
from shared.models import OWNERSHIP, metadata
from shared.settings import get_settings
from tooling.cli.output import console, err_console, print_json, print_table

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
    """Tables (owner, rows, sizes), their indexes (size, scans, definition) and retention."""
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
        kept = retention.report(conn, get_settings())
    if as_json:
        print_json({"tables": tables, "indexes": indexes, "retention": kept})
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
    print_table(
        "Retention (pruned by every worker on RETENTION_SCHEDULE)",
        ["table", "pruned", "kept (days)", "setting", "rows", "oldest", "past retention"],
        [tuple(r.values()) for r in kept],
    )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _seed_record(conn: psycopg.Connection, scale: float | None) -> dict:
    from tooling.perf.seed import scale_tag, seeded_scales

    records = seeded_scales(conn)
    if not records:
        err_console.print("[red]✗[/] nothing seeded here: run `scout db seed --scale N` first")
        raise typer.Exit(1)
    if scale is None:
        return max(records.values(), key=lambda r: float(r["scale"]))
    record = records.get(scale_tag(scale))
    if record is None:
        seeded = ", ".join(sorted(records))
        err_console.print(f"[red]✗[/] scale {scale:g} is not seeded (seeded: {seeded})")
        raise typer.Exit(1)
    return record


@app.command()
def seed(
    scale: float = typer.Option(1.0, "--scale", help="1 = 10k users, 100k campaigns, 1M creators."),
    as_json: bool = typer.Option(False, "--json", help="Print the seed record as JSON."),
    vacuum: bool = typer.Option(True, help="VACUUM ANALYZE the seeded tables afterwards."),
) -> None:
    """Write a skewed synthetic data set with COPY (idempotent: a seeded scale is skipped)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from tooling.perf import seed as seeding

    try:
        seeding.scale_tag(scale)
    except ValueError as exc:
        err_console.print(f"[red]✗[/] {exc}")
        raise typer.Exit(2) from exc
    tasks: dict[str, int] = {}
    columns = (TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.completed:>9,.0f}/{task.total:,.0f}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console, disable=as_json) as bar:

        def progress(table: str, rows: int, planned: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=planned)
            bar.advance(tasks[table], rows)

        result = seeding.seed(get_settings().database_url, scale, progress=progress, vacuum=vacuum)
    if as_json:
        print_json({"created": result.created, **result.record})
        return
    verb = "seeded" if result.created else "already seeded (nothing written)"
    console.print(f"[green]✓[/] scale {result.scale} {verb}")
    print_table("Rows", ["table", "rows"], sorted(result.record["counts"].items()))


@app.command()
def perf(
    scale: float | None = typer.Option(
        None, "--scale", help="Seeded scale to aim at (default: largest)."
    ),
    iterations: int = typer.Option(300, min=10, help="Timed calls per pattern."),
    only: str | None = typer.Option(None, help="Only patterns whose name contains this."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Time the seed's query patterns: Scout's data layer beside the same SQL on raw psycopg."""
    from tooling.perf import patterns

    url = get_settings().database_url
    with _connect() as conn:
        record = _seed_record(conn, scale)
    with err_console.status("measuring") as status:
        results = patterns.run(
            url, record, iterations=iterations, only=only,
            progress=lambda name: None if as_json else status.update(f"measuring {name}"),
        )  # fmt: skip
    if as_json:
        print_json([m.as_json() for m in results])
    else:
        print_table(
            f"Query patterns at scale {record['scale']} ({iterations} calls each, ms)",
            ["pattern", "p50", "p99", "psycopg p50", "psycopg p99", "ratio", "in txn p50", "plan", "note"],
            [
                (m.pattern, f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}", f"{m.baseline_p50_ms:.2f}",
                 f"{m.baseline_p99_ms:.2f}", f"{m.ratio:.2f}x", f"{m.txn_p50_ms:.2f}",
                 "ok" if m.plan_ok else "Seq Scan on " + ", ".join(m.seq_scans), m.note)
                for m in results
            ],
        )  # fmt: skip
        over = [m.pattern for m in results if m.p99_ms > 100]
        console.print(
            "seed budget (< 100 ms): "
            + ("[green]met[/]" if not over else f"[red]missed by {', '.join(over)}[/]")
        )
    if not all(m.plan_ok for m in results):
        raise typer.Exit(1)


@app.command()
def analyze(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Data-quality checks, row distributions, and unused or missing indexes."""
    from tooling.perf.analyze import analyze as build_report

    with _connect() as conn:
        report = build_report(conn)
    if as_json:
        print_json(report)
        return
    print_table(
        "Data quality",
        ["check", "offending rows", "meaning"],
        [(q["check"], q["count"] if q["ok"] else f"[red]{q['count']}[/]", q["meaning"]) for q in report["quality"]],
    )  # fmt: skip
    print_table(
        "Distributions",
        ["metric", "rows", "min", "p50", "p90", "p99", "max", "sum"],
        [tuple(d.values()) for d in report["distributions"]],
    )
    print_table(
        "Unused indexes (non-unique, never scanned)",
        ["table", "index", "size"],
        [(u["table"], u["index"], _size(u["bytes"])) for u in report["unused_indexes"]],
    )
    print_table(
        "Foreign keys without an index",
        ["table", "constraint", "columns"],
        [tuple(f.values()) for f in report["unindexed_foreign_keys"]],
    )
    print_table(
        "Big tables read mostly by sequential scans (index missing?)",
        ["table", "seq scans", "rows read", "index scans", "live rows"],
        [tuple(s.values()) for s in report["seq_scanned_tables"]],
    )
