"""The ``scout`` command: one entry point for developers and operators."""

import typer

from tooling.cli import billing, db, dev, migrate, nats_auth, roles, run, token, user
from tooling.cli.events import app as events_app

app = typer.Typer(
    help="Scout: influencer discovery platform (four services on Postgres + NATS JetStream).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(migrate.app, name="migrate")
db.app.command("roles")(roles.roles)
app.add_typer(db.app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(user.app, name="user")
app.add_typer(billing.app, name="billing")
app.command("dev")(dev.dev)
app.command("dev-token")(token.dev_token)
app.command("api")(run.api)
app.command("worker")(run.worker)
app.command("nats-auth")(nats_auth.nats_auth)


def main() -> None:
    app()
