"""The container suite: Scout's image and the repository's compose files on a real Docker engine.

Runs wherever an engine answers or can be started here (``dockerd`` installed, run as root);
everywhere else every test in this folder is skipped with one reason, printed once by ``-ra``.
Base images are offline stand-ins built on first use and reused afterwards (``standins.py``);
Scout's image is built once per run by ``docker compose build`` from an offline wheelhouse.
The figures each test measures are printed at the end of the run, passed or failed.
"""

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from .engine import Engine, EngineUnavailable, docker_engine
from .stack import IMAGE, ROOT, Stack
from .standins import ensure_base_images, ensure_wheelhouse

# Figures reported at the end of the run: (section, line).
FIGURES: list[tuple[str, str]] = []
IMAGE_LIMIT_MB = 250


def report(section: str, line: str) -> None:
    FIGURES.append((section, line))


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("container suite figures")
    for section, line in FIGURES:
        terminalreporter.write_line(f"[{section}] {line}")


class _Suite:
    """The engine and base images, made ready by the first container test and kept until the
    session ends; or the one reason every container test is skipped."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.unavailable: str | None = None
        self.ready = False
        self._exit = contextlib.ExitStack()

    def prepare(self) -> None:
        if self.ready:
            return
        self.ready = True
        workdir = Path(tempfile.mkdtemp(prefix="scout-containers-"))
        self._exit.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            engine = self._exit.enter_context(docker_engine(workdir))
            if engine.started is not None:
                report("engine", "started dockerd for this run (stopped at the end)")
            built = ensure_base_images(engine)
            ensure_wheelhouse(ROOT)
        except EngineUnavailable as exc:
            self.unavailable = str(exc)
            self.close()
            return
        for name, seconds in built.items():
            report("base images", f"built stand-in {name} in {seconds:.0f} s")
        if not built:
            report("base images", "reused the cached base images")
        self.engine = engine

    def close(self) -> None:
        self._exit.close()


_SUITE = _Suite()


def pytest_runtest_setup(item) -> None:
    """Skip every container test from one place, so ``-ra`` shows the reason on one line."""
    _SUITE.prepare()
    if _SUITE.unavailable is not None:
        pytest.skip(f"container suite: {_SUITE.unavailable}")


def pytest_sessionfinish(session) -> None:
    _SUITE.close()


@pytest.fixture(scope="session")
def engine() -> Engine:
    assert _SUITE.engine is not None
    return _SUITE.engine


@pytest.fixture(scope="session")
def scout_image(engine: Engine) -> str:
    """Scout's image, built once by Compose from the unchanged compose file, offline."""
    stack = Stack(engine, "scout-image-build")
    start = time.monotonic()
    result = stack.compose("build")
    seconds = time.monotonic() - start
    output = (result.stdout + result.stderr).decode(errors="replace")
    built = [line.split()[-2] for line in output.splitlines() if line.strip().endswith(" Built")]
    size_mb = int(engine.out("image", "inspect", IMAGE, "--format", "{{.Size}}")) / 1e6
    report("image", f"docker compose build: {seconds:.0f} s, services built: {built}")
    report("image", f"{IMAGE}: {size_mb:.0f} MB (limit {IMAGE_LIMIT_MB} MB)")
    assert built == ["migrate"], f"Compose built {built}; one build must serve every service"
    assert size_mb <= IMAGE_LIMIT_MB, f"image is {size_mb:.0f} MB"
    return IMAGE


@pytest.fixture(scope="module")
def fresh_project(engine: Engine, scout_image: str):
    """Builds a :class:`Stack` whose leftovers (from an interrupted run) are removed first and
    which is taken down, volumes included, when the module ends."""
    stacks: list[Stack] = []

    def make(project: str, files: tuple[str, ...] = ("docker-compose.yml",)) -> Stack:
        stack = Stack(engine, project, files)
        stack.down()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.down()
