"""``scout migrate``: run and check the one Alembic history."""

import typer

from shared.settings import get_settings
from tooling import migrate
from tooling.cli.output import console, err_console, print_json

app = typer.Typer(help="Run and check database migrations.", no_args_is_help=True)


def _url() -> str:
    return get_settings().database_url


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(_url(), revision)
    console.print(f"[green]upgraded[/] to {', '.join(migrate.status(_url()).current) or 'base'}")


@app.command()
def downgrade(
    revision: str = typer.Argument("-1", help="Target revision (default: one step)."),
) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(_url(), revision)
    console.print(f"[yellow]downgraded[/] to {', '.join(migrate.status(_url()).current) or 'base'}")


@app.command()
def revision(
    message: str = typer.Option(..., "-m", "--message", help="What the migration does."),
    rev_id: str = typer.Option(None, "--rev-id", help="Revision id (default: generated)."),
) -> None:
    """Autogenerate a migration (DATABASE_URL must be at head; review the file before use)."""
    if not migrate.status(_url()).at_head:
        err_console.print("[red]the database is not at head; run scout migrate upgrade first[/]")
        raise typer.Exit(1)
    console.print(f"[green]created[/] {migrate.revision(_url(), message, rev_id)}")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show the current revision, the head and pending migrations."""
    s = migrate.status(_url())
    if as_json:
        print_json(
            {"current": s.current, "heads": s.heads, "pending": s.pending, "at_head": s.at_head}
        )
        return
    console.print(f"current: {', '.join(s.current) or 'base'}   head: {', '.join(s.heads)}")
    for line in s.pending:
        console.print(f"  [yellow]pending[/] {line}")
    if s.at_head:
        console.print("[green]up to date[/]")


@app.command()
def check() -> None:
    """Fail unless there is one head, the database is at it, and models match migrations."""
    problems: list[str] = []
    heads = migrate.script_directory().get_heads()
    if len(heads) != 1:
        problems.append(f"expected one head, found {len(heads)}: {', '.join(heads)}")
    s = migrate.status(_url())
    if not s.at_head:
        problems.append(
            f"database is not at head ({len(s.pending)} pending); run `scout migrate upgrade`"
        )
    else:
        for diff in migrate.drift(_url()):
            problems.append(f"models and migrations differ: {diff}")
    if problems:
        for problem in problems:
            err_console.print(f"[red]✗[/] {problem}")
        raise typer.Exit(1)
    console.print("[green]✓[/] one head, database at head, models match migrations")
