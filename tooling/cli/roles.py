"""``scout db roles``: print or apply the per-service Postgres roles and grants (tooling.roles)."""

import os
from typing import Annotated

import psycopg
import typer

from shared.db import libpq_url
from shared.settings import get_settings
from tooling.cli.output import console
from tooling.roles import SERVICES, roles_sql


def roles(
    apply: Annotated[bool, typer.Option(help="Run the SQL against DATABASE_URL.")] = False,
    prefix: Annotated[str, typer.Option(help="Role name prefix.")] = "scout_",
) -> None:
    """One role per service: reads every table, writes only the tables its service owns.

    Passwords come from ``SCOUT_ROLE_PASSWORD_<SERVICE>`` when set (the Kubernetes Secret).
    """
    passwords = {
        s: os.environ[f"SCOUT_ROLE_PASSWORD_{s.upper()}"]
        for s in SERVICES
        if os.environ.get(f"SCOUT_ROLE_PASSWORD_{s.upper()}")
    }
    sql = roles_sql(prefix=prefix, passwords=passwords)
    if not apply:
        typer.echo(sql, nl=False)
        return
    with psycopg.connect(libpq_url(get_settings().database_url), autocommit=True) as conn:
        conn.execute(sql)
    console.print(f"[green]✓[/] roles {', '.join(prefix + s for s in SERVICES)} match ownership")
