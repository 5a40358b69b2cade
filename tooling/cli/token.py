"""``scout dev-token``: a bearer token the development configuration accepts."""

from typing import Annotated

import typer

from shared.auth import dev_key_paths, mint_dev_token
from shared.settings import get_settings


def dev_token(
    clerk_user_id: Annotated[str, typer.Argument(help="Clerk user id to put in `sub`.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = 86400,
    admin: Annotated[bool, typer.Option(help="Print a hint to make the user an admin.")] = False,
) -> None:
    """Mint an RS256 token signed with the dev key pair (created on first use)."""
    settings = get_settings()
    if settings.scout_env == "production":
        typer.echo("dev-token is for development; production tokens come from Clerk.", err=True)
        raise typer.Exit(2)
    token = mint_dev_token(clerk_user_id, issuer=settings.auth_issuer, ttl_seconds=ttl)
    typer.echo(token)
    private_path, _ = dev_key_paths()
    typer.echo(f"# signed with {private_path} (issuer {settings.auth_issuer})", err=True)
    if admin:
        typer.echo(
            f"# admin: UPDATE users SET is_admin = true WHERE user_id = '{clerk_user_id}';",
            err=True,
        )
