"""``scout user inspect`` and ``scout user create``: one user across every service's tables."""

import asyncio
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import make_engine
from shared.models import User
from shared.settings import get_settings
from tooling.cli.output import console, err_console, print_json, print_table

app = typer.Typer(help="Inspect and create users.", no_args_is_help=True)


async def _with_session(work):
    engine = make_engine(get_settings().database_url, pool_size=1, application_name="scout-cli")
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _find_clerk_id(session: AsyncSession, email: str) -> list[str]:
    stmt = sa.select(User.user_id).where(sa.func.lower(User.email) == email.strip().lower())
    return list((await session.execute(stmt.order_by(User.created_at))).scalars())


@app.command()
def inspect(
    email: Annotated[str | None, typer.Option(help="Find the user by email (exact).")] = None,
    clerk_id: Annotated[str | None, typer.Option("--clerk-id", help="The Clerk user id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    events: Annotated[int, typer.Option(help="How many recent events to show.", min=0)] = 20,
) -> None:
    """Everything about one user across all services' tables, inconsistencies flagged."""
    from services.identity.service import user_dossier  # the operator tool reads identity's view

    if (email is None) == (clerk_id is None):
        err_console.print("Give exactly one of --email or --clerk-id.")
        raise typer.Exit(2)

    async def work(session: AsyncSession) -> Any:
        ids = [clerk_id] if clerk_id else await _find_clerk_id(session, email or "")
        if len(ids) > 1:
            return ids
        return await user_dossier(session, ids[0], events_limit=events) if ids else None

    found = asyncio.run(_with_session(work))
    if isinstance(found, list):
        err_console.print(
            f"{len(found)} users have that email: {', '.join(found)}; use --clerk-id."
        )
        raise typer.Exit(1)
    if found is None:
        err_console.print(
            f"No user with {'email ' + email if email else 'Clerk id ' + str(clerk_id)}."
        )
        raise typer.Exit(1)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    profile = found.profile.model_dump()
    print_table(
        f"User {found.profile.user_id}",
        ["field", "value"],
        [(k, v) for k, v in profile.items() if v not in (None, {}, [])],
    )
    print_table(
        "Rows per table (every service)",
        ["table", "rows"],
        sorted(found.related_rows.items()),
    )
    if found.deletion:
        print_table(
            "[bold]Deletion[/] (the user's rows go once every service has applied it)",
            ["service", "pending since", "last asked", "applied"],
            [
                (
                    step.service,
                    step.since.isoformat(timespec="seconds"),
                    step.last_asked_at.isoformat(timespec="seconds"),
                    step.applied_at.isoformat(timespec="seconds")
                    if step.applied_at
                    else "[red]pending[/]",
                )
                for step in found.deletion
            ],
        )
    if found.inconsistencies:
        print_table(
            "[bold red]Inconsistencies[/]",
            ["code", "detail"],
            [(i.code, i.detail) for i in found.inconsistencies],
        )
    else:
        console.print("[green]No inconsistencies found.[/]")
    print_table(
        "Recent events",
        ["occurred_at", "service", "type", "published"],
        [
            (
                e.occurred_at.isoformat(timespec="seconds"),
                e.service,
                f"{e.type}.v{e.version}",
                "yes" if e.published else "no",
            )
            for e in found.recent_events
        ],
    )


@app.command()
def create(
    clerk_id: Annotated[str, typer.Argument(help="The Clerk user id (user_…).")],
    email: Annotated[str, typer.Option(help="The user's email.")],
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    admin: Annotated[bool, typer.Option(help="Make the user an administrator.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Create a user exactly as a first sign-up would (emits identity.user.created)."""
    from services.identity.repository import IdentityRepository
    from services.identity.service import create_user
    from shared.queries.users import get_user_profile

    async def work(session: AsyncSession) -> Any:
        user_pk = await create_user(session, clerk_id, email=email, full_name=full_name)
        if user_pk is None:
            return None
        if admin:
            await IdentityRepository(session).set_admin(user_pk, True)
        return await get_user_profile(session, clerk_id)

    profile = asyncio.run(_with_session(work))
    if profile is None:
        err_console.print(f"User {clerk_id} already exists.")
        raise typer.Exit(1)
    if as_json:
        print_json(profile.model_dump(mode="json"))
    else:
        console.print(
            f"Created {profile.user_id} ({profile.email}) id={profile.id}"
            + (" [admin]" if profile.is_admin else "")
        )
