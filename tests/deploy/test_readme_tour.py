"""The README's five-minute tour works as written, against a running ``scout dev``.

The tour's ``bash`` blocks are read from README.md and run in order in one new shell, as a
newcomer pastes them: at the repository's root, no virtualenv on ``PATH``, nothing exported
but what any shell of that user has. The only change: this ``scout dev`` listens on free ports
(its own database, its own NATS prefix), so the tour's ``127.0.0.1:800N`` become those ports,
and the shell's ``<SERVICE>_PORT`` say the same to the CLI.

The same suite then meets a second ``scout dev`` with the same settings, which must refuse at
once with one line naming the port and its holder — and the first one's start-up banner must
have printed its URLs and commands whole, never wrapped, since its output is not a terminal.
"""

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.dev import SERVICES, DevSuite, dev_environment, forget_streams, start, stop
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
TOUR = "## A five-minute tour"
DEFAULT_PORTS = {"identity": 8001, "billing": 8002, "campaign": 8003, "scraping": 8004}


def tour_blocks(readme: str) -> list[str]:
    """The ``bash`` blocks of the README's tour section, in order."""
    section = readme.split(TOUR, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def new_shell_environment(suite: DevSuite) -> dict[str, str]:
    """What a new shell of the same user holds: no virtualenv on PATH, no Scout settings but
    the ports this suite listens on."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    env = {
        "PATH": path,
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "XDG_DATA_HOME": suite.env["XDG_DATA_HOME"],  # the user's data dir: its dev key pair
    }
    for service in SERVICES:
        env[f"{service.upper()}_PORT"] = suite.env[f"{service.upper()}_PORT"]
    return env


@pytest.fixture(scope="module")
async def suite(scratch_database, nats_url, tmp_path_factory) -> AsyncIterator[DevSuite]:
    tmp = tmp_path_factory.mktemp("tour")
    env = dev_environment(scratch_database(), nats_url, tmp / "data")
    running = await start(env, tmp / "scout-dev.log")
    try:
        yield running
    finally:
        stop(running)
        await forget_streams(nats_url, env)


async def test_the_readme_tour_runs_as_written(suite: DevSuite):
    blocks = tour_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4, "the tour lost its code blocks"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    for service, port in DEFAULT_PORTS.items():
        script = script.replace(f"127.0.0.1:{port}", suite.url(service).removeprefix("http://"))
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script,
        cwd=ROOT, env=new_shell_environment(suite),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    except TimeoutError:
        proc.kill()
        pytest.fail(f"the tour did not finish in 300 s:\n{suite.output()[-3000:]}")
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    billing = suite.url("billing")
    for expected in (
        '"user_id":"user_123"',  # the profile
        f'"checkout_url":"{billing}/dev/checkout/cs_local_',  # the local checkout
        "user_123 is on Growth (active, billed monthly)",  # scout billing subscribe
        '"plan":"growth","subscription_status":"active"',  # the billing status
        '"added":5,"skipped":0,"attempted":5,"missing":[],"truncated":false',  # from_job
        '"total":3,"done":3,"failed":0,"fetched":3',  # three creators enriched
    ):
        assert expected in text, f"{expected!r} not in the tour's output:\n{text}"
    csv_lines = [line for line in text.splitlines() if line.count(",") >= 3]
    header = next(line for line in csv_lines if "handle" in line)
    assert len(csv_lines[csv_lines.index(header) + 1 :]) >= 5  # the export: header + 5 rows

    # What the tour did is really there.
    token = suite.token("user_123")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        lists = (await http.get(f"{suite.url('campaign')}/lists")).json()
        status = (await http.get(f"{billing}/billing/status")).json()
    assert [(x["name"], x["creator_count"]) for x in lists["items"]] == [("Shortlist", 5)]
    assert status["usage"]["campaigns"]["used"] == 1

    # Three creators fetched, then the list's five: three from storage, two fetched.
    async def spent() -> bool:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            usage = (await http.get(f"{billing}/billing/status")).json()["usage"]
        return usage["enrichments"] == {"used": 5, "limit": 500, "reserved": 0}

    await eventually(spent, within=20)


async def test_a_second_scout_dev_refuses_with_one_line_naming_the_port(suite: DevSuite):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tooling.cli", "dev", "--no-colour",
        env=suite.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text  # no "ready", no banner, nothing started
    port = suite.env["IDENTITY_PORT"]
    assert lines[0].startswith(f"scout dev: port {port} (identity API) is in use by "), text
    assert "scout api identity" in lines[0] or "(pid " in lines[0], text
    assert "set IDENTITY_PORT to another port" in lines[0]
    assert "Scout is up" not in text and "ready" not in text


def test_the_start_up_banner_never_wraps_a_url_or_command(suite: DevSuite):
    lines = [line.strip() for line in suite.output().splitlines()]
    identity = suite.url("identity")
    curl = f'curl -H "Authorization: Bearer $(./scripts/scout dev-token user_123)" {identity}/me'
    assert curl in lines, suite.output()[-3000:]
    assert any(
        line.startswith("./scripts/scout billing subscribe user_123 --plan growth")
        for line in lines
    )
    for service in SERVICES:
        worker = f"http://127.0.0.1:{suite.env[f'{service.upper()}_WORKER_METRICS_PORT']}/metrics"
        line = next(line for line in lines if line.startswith(f"{service} "))
        assert f"{suite.url(service)}/docs" in line and worker in line, line
