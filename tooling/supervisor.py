"""Run a set of child processes with prefixed, coloured logs and stop them all cleanly.

Used by ``scout dev``. Each child gets its own process group (Ctrl-C in the terminal reaches
only the supervisor, which then stops the children in order) and, on Linux, a parent-death
signal, so even a ``kill -9`` of the supervisor leaves no orphans behind.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

COLOURS = ("36", "35", "33", "32", "34", "91", "96", "93", "92", "94")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    colour: str = "37"
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    started_at: float = 0.0
    reader: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None


class Supervisor:
    """Starts children, relays their output, notices exits, and stops them all."""

    def __init__(
        self, *, write: Callable[[str], None] | None = None, colour: bool | None = None
    ) -> None:
        self.children: list[Child] = []
        self._write = write or (lambda line: print(line, flush=True))
        self.colour = sys.stdout.isatty() if colour is None else colour
        self.width = 0
        self.exit_event = asyncio.Event()

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env, COLOURS[len(self.children) % len(COLOURS)])
        self.children.append(child)
        self.width = max(self.width, len(name))
        return child

    def prefix(self, child: Child) -> str:
        label = f"{child.name:<{self.width}} |"
        return f"\x1b[{child.colour}m{label}\x1b[0m" if self.colour else label

    def say(self, text: str) -> None:
        self._write(text)

    async def start(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env=child.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # own process group: we signal the whole group
            preexec_fn=_die_with_parent,
            limit=1024 * 1024,
        )
        child.started_at = time.monotonic()
        child.reader = asyncio.create_task(self._relay(child), name=f"relay-{child.name}")

    async def start_all(self) -> None:
        for child in self.children:
            await self.start(child)

    async def _relay(self, child: Child) -> None:
        assert child.process and child.process.stdout
        while True:
            raw = await child.process.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip("\n")
            child.tail.append(line)
            self._write(f"{self.prefix(child)} {line}")
        await child.process.wait()
        self.exit_event.set()

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.exited]

    def describe_exit(self, child: Child) -> str:
        """A clear account of why a child stopped: status, and the last lines it printed."""
        assert child.process is not None
        code = child.process.returncode
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with status {code}"
        )
        lasted = time.monotonic() - child.started_at
        lines = [f"{child.name} {how} after {lasted:.1f} s ({' '.join(child.argv[-3:])})."]
        hint = _hint(list(child.tail))
        if hint:
            lines.append(f"  likely cause: {hint}")
        if child.tail:
            lines.append("  its last lines:")
            lines += [f"    {line}" for line in list(child.tail)[-12:]]
        return "\n".join(lines)

    async def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM every child's process group, wait ``grace`` seconds, then SIGKILL the rest."""
        running = [c for c in self.children if c.process and c.process.returncode is None]
        for child in running:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                self.say(f"{child.name} did not stop within {grace:.0f} s; killing it")
                _signal_group(child, signal.SIGKILL)
                await child.process.wait()
        for child in self.children:
            # Anything left in a child's group (a grandchild) goes too: no orphans.
            _signal_group(child, signal.SIGKILL)
            if child.reader:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.reader, 2)


def _signal_group(child: Child, sig: int) -> None:
    if child.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def _hint(lines: list[str]) -> str | None:
    text = "\n".join(lines)
    for marker, hint in (
        ("No module named 'services.", "the service is not built yet (its module is missing)"),
        ('Could not import module "services.', "the service is not built yet (no api module)"),
        (
            "Address already in use",
            "the port is taken: stop the other process or set <SERVICE>_PORT",
        ),
        (
            "address already in use",
            "the port is taken: stop the other process or set <SERVICE>_PORT",
        ),
        ("OperationalError", "the database refused or dropped the connection"),
        ("nats: no servers available", "NATS is not reachable"),
    ):
        if marker in text:
            return hint
    return None
