"""``scout dev``: prepare local infrastructure and run the suite.

For now it finds Postgres and NATS (the given URLs, else local servers), migrates the database
and lists the services; starting the services themselves arrives with their issues.
"""

import typer

from shared import migrate
from shared.cli.output import console, err_console, print_table
from shared.infra import InfrastructureUnavailable, resolve_nats, resolve_postgres
from shared.settings import get_settings

SERVICES = [
    ("identity", "IDENTITY_PORT", "users, onboarding, Clerk webhooks, admin, runtime config"),
    ("billing", "BILLING_PORT", "plans, subscriptions, trials, usage and limits, Stripe"),
    ("campaign", "CAMPAIGN_PORT", "campaigns, creator lists, CSV export, dashboard"),
    ("scraping", "SCRAPING_PORT", "search jobs, results, workers, creator providers"),
]


def dev() -> None:
    """Find Postgres and NATS, migrate the database, and list the services."""
    try:
        pg = resolve_postgres(try_docker=False)
        nats = resolve_nats(try_docker=False)
    except InfrastructureUnavailable as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    console.print(f"[green]✓[/] Postgres ({pg.source}): {pg.url.split('@')[-1]}")
    console.print(f"[green]✓[/] NATS ({nats.source}): {nats.url}")
    migrate.upgrade(pg.url, "head")
    console.print(f"[green]✓[/] database migrated to {', '.join(migrate.status(pg.url).current)}")
    settings = get_settings()
    print_table(
        "Scout services",
        ["service", "port", "owns"],
        [(name, getattr(settings, var.lower()), owns) for name, var, owns in SERVICES],
    )
    console.print(
        "[yellow]The service processes are not built yet (issues 4 to 7); "
        "this command prepares the database and NATS they will use.[/]"
    )
