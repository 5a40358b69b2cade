"""``scout dev``'s supervisor: prefixed logs, clear exit reports, and no orphans on stop."""

import asyncio
import os
import sys

import psutil

from tooling.supervisor import Supervisor

SLEEPER = "import time, sys; print('up', flush=True); time.sleep(600)"
# A child that starts a grandchild of its own: stopping must take the whole group.
SPAWNER = (
    "import subprocess, sys, time; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print('grandchild', p.pid, flush=True); time.sleep(600)"
)
# Ignores SIGTERM: the supervisor must escalate to SIGKILL after the grace period.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('stubborn', flush=True); time.sleep(600)"
)
CRASHER = "import sys; print('boom: No module named \\'services.identity.api\\'', flush=True); sys.exit(3)"


async def _until(check, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_stop_all_ends_every_child_and_grandchild_even_stubborn_ones():
    lines: list[str] = []
    sup = Supervisor(write=lines.append, colour=False)
    env = dict(os.environ)
    sup.add("sleeper", [sys.executable, "-c", SLEEPER], env)
    sup.add("spawner", [sys.executable, "-c", SPAWNER], env)
    sup.add("stubborn", [sys.executable, "-c", STUBBORN], env)
    await sup.start_all()
    await _until(
        lambda: sum(" up" in x or "grandchild" in x or "stubborn" in x for x in lines) == 3
    )
    grandchild = int(next(x for x in lines if "grandchild" in x).split()[-1])
    assert any(x.startswith("sleeper  | up") for x in lines)  # prefixed and aligned
    pids = [c.pid for c in sup.children] + [grandchild]

    await sup.stop_all(grace=1.0)

    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert any("stubborn did not stop" in x for x in lines)


async def test_a_child_that_exits_at_once_is_reported_with_status_and_cause():
    lines: list[str] = []
    sup = Supervisor(write=lines.append, colour=False)
    child = sup.add("identity-api", [sys.executable, "-c", CRASHER], dict(os.environ))
    await sup.start_all()
    await asyncio.wait_for(sup.exit_event.wait(), 10)
    await sup.stop_all()
    assert sup.exited() == [child]
    report = sup.describe_exit(child)
    assert "identity-api exited with status 3" in report
    assert "not built yet" in report and "boom" in report


async def test_colour_prefixes_use_ansi_codes_only_when_asked():
    plain, coloured = Supervisor(write=print, colour=False), Supervisor(write=print, colour=True)
    a, b = plain.add("x", ["true"], {}), coloured.add("x", ["true"], {})
    assert plain.prefix(a) == "x |"
    assert coloured.prefix(b).startswith("\x1b[") and coloured.prefix(b).endswith("\x1b[0m")
