"""The ``scout`` command: one entry point for developers and operators."""

import typer

from shared.cli import db, dev, migrate

app = typer.Typer(
    help="Scout: influencer discovery platform (four services on Postgres + NATS JetStream).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(migrate.app, name="migrate")
app.add_typer(db.app, name="db")
app.command("dev")(dev.dev)


def main() -> None:
    app()
