"""``scout dev`` checks every port before it starts anything, and runs in a database of its own.

The port check refuses with one line naming the port, what it was for and who holds it; the
database, without ``DATABASE_URL``, is ``scout`` on the server found (created when missing).
"""

import asyncio
import os
import socket
import subprocess
import sys
import uuid

import psycopg

from tests.conftest import drop_database
from tooling.cli.dev import own_database
from tooling.embedded import free_port, free_ports
from tooling.infra import Resolved
from tooling.ports import Port, first_taken, holder


def _listening() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_the_first_taken_port_is_named_with_its_holder():
    with _listening() as held:
        port = held.getsockname()[1]
        free = free_port()
        line = first_taken(
            [
                Port(free, "identity API", "set IDENTITY_PORT to another port"),
                Port(port, "billing worker metrics", "set BILLING_WORKER_METRICS_PORT to another"),
            ]
        )
        assert line is not None and "\n" not in line
        assert line.startswith(f"port {port} (billing worker metrics) is in use by ")
        assert f"pid {os.getpid()}" in line and "BILLING_WORKER_METRICS_PORT" in line
        assert holder(port).startswith(("python", "pytest"))
    assert first_taken([Port(free, "identity API", "x")]) is None
    twice = first_taken([Port(free, "identity API", "x"), Port(free, "billing API", "move it")])
    assert (
        twice == f"port {free} is configured for both the identity API and the billing API; move it"
    )


async def test_scout_dev_refuses_a_taken_port_before_starting_anything(tmp_path):
    with _listening() as held:
        port = held.getsockname()[1]
        env = {
            **os.environ,
            "SCOUT_ENV": "development",
            "XDG_DATA_HOME": str(tmp_path),
            "SCRAPING_WORKER_METRICS_PORT": str(port),
        }
        free = iter(p for p in free_ports(8) if p != port)  # distinct, and not the taken one
        for service in ("IDENTITY", "BILLING", "CAMPAIGN", "SCRAPING"):
            env[f"{service}_PORT"] = str(next(free))
        for service in ("IDENTITY", "BILLING", "CAMPAIGN"):
            env[f"{service}_WORKER_METRICS_PORT"] = str(next(free))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tooling.cli", "dev", "--no-colour",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text  # one clear line, nothing started, nothing "ready"
    assert f"port {port} (scraping worker metrics) is in use by " in lines[0]
    assert f"(pid {os.getpid()}: " in lines[0]  # this test process holds it
    assert "set SCRAPING_WORKER_METRICS_PORT to another port" in lines[0]


def test_without_database_url_the_suite_gets_a_database_of_its_own(postgres_admin_url):
    name = f"scout_own_{uuid.uuid4().hex[:8]}"
    server = Resolved(postgres_admin_url, "local")
    try:
        url, created = own_database(server, name)
        assert created and url.endswith(f"/{name}") and url != postgres_admin_url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == name
        again, created_again = own_database(server, name)
        assert (again, created_again) == (url, False)
    finally:
        drop_database(postgres_admin_url, name)
    given = Resolved("postgresql://postgres@127.0.0.1:5432/mine", "env")
    assert own_database(given) == (given.url, False)  # DATABASE_URL is used as given


def test_the_scripts_scout_wrapper_runs_the_venvs_scout_from_anywhere(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    result = subprocess.run(
        [os.path.join(root, "scripts", "scout"), "dev-token", "user_wrapper"],
        cwd=tmp_path,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/root"), "XDG_DATA_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2  # a JWT: header.payload.signature
