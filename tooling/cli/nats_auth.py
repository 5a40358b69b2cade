"""``scout nats-auth``: print nats-server's per-service users and permissions."""

from typing import Annotated

import typer

from tooling.nats_auth import render


def nats_auth(
    prefix: Annotated[str, typer.Option(help="SCOUT_NATS_PREFIX the services run with.")] = "",
) -> None:
    """Print the `authorization` block (deploy/k8s/nats/auth.conf is this output)."""
    typer.echo(render(prefix), nl=False)
