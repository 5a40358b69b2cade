"""Invoke the real ``scout`` CLI in-process with a given environment."""

from click.testing import Result
from typer.testing import CliRunner

from shared.settings import get_settings
from tooling.cli.main import app


def run_scout(monkeypatch, *args: str, **env: str) -> Result:
    """``scout <args>`` with ``env`` (e.g. ``database_url=...``) as environment variables;
    settings are re-read for the call and forgotten after it."""
    for name, value in env.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
