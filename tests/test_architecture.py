"""The layout rules, checked by reading the code (its AST, never a grep):

* a service imports no other service; ``shared`` (the kernel) imports no service and not the
  tooling package; ``tooling`` may import anything;
* every service has the same rooms; ``api.py`` is the app factory only; routes and handlers
  build no SQL: they call the service, and import neither the repository nor SQLAlchemy (but
  for ``sqlalchemy.ext.asyncio``, whose ``AsyncSession`` a handler's signature names);
* no module outside the tests (and the migrations) is longer than 400 lines.

Each checker takes a repository root, so the tests below also run it on a small bad tree and
make sure it reports what it must.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("api", "routes", "schemas", "service", "repository", "handlers", "worker", "errors")
PACKAGE_ROOMS = {"routes"}  # always a package: one module per resource
MAX_LINES = 400
CHECKED_TREES = ("shared", "services", "tooling", "migrations")


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything ``path`` imports, relative imports resolved.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a module).
    """
    package = _module(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            yield node.lineno, stem
            for alias in node.names:
                yield node.lineno, f"{stem}.{alias.name}"


def _python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def services_in(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "services").iterdir() if (p / "__init__.py").is_file())


def import_violations(root: Path) -> list[str]:
    """Every import that crosses a boundary it may not cross, as ``file:line -> module``."""
    found = []

    def check(path: Path, forbidden) -> None:
        for line, name in imported_modules(path, root):
            if forbidden(name):
                found.append(f"{path.relative_to(root)}:{line} -> {name}")

    for service in services_in(root):
        own = f"services.{service}"

        def other_service(name: str, own: str = own) -> bool:
            in_services = name.startswith("services.")
            return in_services and not (name == own or name.startswith(own + "."))

        for path in _python_files(root / "services" / service):
            check(path, other_service)

    def service_or_tooling(name: str) -> bool:
        return name.split(".")[0] in ("services", "tooling")

    for path in _python_files(root / "shared"):
        check(path, service_or_tooling)
    return sorted(set(found))


def _builds_sql(name: str) -> bool:
    return name.split(".")[0] == "sqlalchemy" and not name.startswith("sqlalchemy.ext.asyncio")


def room_violations(root: Path) -> list[str]:
    """Every missing room, and every room that holds what it must not."""
    found = []
    for service in services_in(root):
        home = root / "services" / service
        for room in ROOMS:
            package = (home / room / "__init__.py").is_file()
            module = (home / f"{room}.py").is_file()
            if not (package or (module and room not in PACKAGE_ROOMS)):
                kind = "a package" if room in PACKAGE_ROOMS else f"{room}.py or {room}/"
                found.append(f"{service}: no {room} ({kind})")
        api = home / "api.py"
        if api.is_file():
            defined = [
                node.name
                for node in ast.parse(api.read_text()).body
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ]
            if defined != ["create_app"]:
                found.append(f"{service}: api.py defines {defined}, not just create_app")
        repository = f"services.{service}.repository"
        edges = [*_python_files(home / "routes"), home / "handlers.py"]
        for path in (p for p in edges if p.is_file()):
            for line, name in imported_modules(path, root):
                if _builds_sql(name) or name.startswith(repository):
                    found.append(f"{service}: {path.relative_to(root)}:{line} uses {name}")
    return sorted(set(found))


def long_modules(root: Path) -> list[str]:
    """Non-test modules over ``MAX_LINES`` lines (migration versions are reviewed history)."""
    found = []
    for tree in CHECKED_TREES:
        for path in _python_files(root / tree):
            if "versions" in path.relative_to(root).parts:
                continue
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


# --- the rules hold for this repository --------------------------------------------------------


def test_services_import_no_other_service_and_the_kernel_no_service_or_tooling():
    assert services_in(ROOT) == ["billing", "campaign", "identity", "scraping"]
    assert import_violations(ROOT) == []


def test_every_service_has_every_room_and_rooms_hold_what_they_should():
    assert room_violations(ROOT) == []


def test_no_module_is_longer_than_the_limit():
    assert long_modules(ROOT) == []


# --- and the checkers can fail -----------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _service(name: str, *, skip: tuple[str, ...] = (), api: str = "def create_app(): ...\n"):
    files = {f"services/{name}/__init__.py": ""}
    for room in ROOMS:
        if room in skip:
            continue
        if room in PACKAGE_ROOMS:
            files[f"services/{name}/{room}/__init__.py"] = ""
        else:
            files[f"services/{name}/{room}.py"] = api if room == "api" else ""
    return files


def test_the_import_checker_reports_every_crossing(tmp_path):
    root = _tree(
        tmp_path,
        {
            **_service("alpha"),
            **_service("beta"),
            "services/__init__.py": "",
            "services/alpha/service.py": (
                "from shared.web import SessionDep\n"
                "from .repository import Repo\n"
                "from services.alpha.errors import Oops\n"
                "from services.beta.repository import BetaRepo\n"
            ),
            "services/alpha/routes/__init__.py": "from ...beta import service\n",
            "services/beta/handlers.py": "import services.alpha.worker\n",
            "shared/__init__.py": "",
            "shared/kernel.py": "from tooling.cli import main\nfrom services import alpha\n",
            "shared/fine.py": "from shared.errors import NotFound\nfrom .errors import X\n",
            "tooling/__init__.py": "from services.alpha import api\n",
        },
    )
    assert import_violations(root) == [
        "services/alpha/routes/__init__.py:1 -> services.beta",
        "services/alpha/routes/__init__.py:1 -> services.beta.service",
        "services/alpha/service.py:4 -> services.beta.repository",
        "services/alpha/service.py:4 -> services.beta.repository.BetaRepo",
        "services/beta/handlers.py:1 -> services.alpha.worker",
        "shared/kernel.py:1 -> tooling.cli",
        "shared/kernel.py:1 -> tooling.cli.main",
        "shared/kernel.py:2 -> services",
        "shared/kernel.py:2 -> services.alpha",
    ]


def test_the_room_checker_reports_missing_rooms_and_misplaced_code(tmp_path):
    root = _tree(
        tmp_path,
        {
            **_service("alpha"),
            **_service("beta", skip=("repository", "errors", "routes"), api="class App: ...\n"),
            "services/beta/routes.py": "",  # a module, not a package
            "services/alpha/routes/items.py": (
                "import sqlalchemy as sa\nfrom ..repository import ItemRepository\n"
            ),
            "services/alpha/repository/__init__.py": "",  # a package room is fine
            "services/alpha/handlers.py": (
                "from sqlalchemy.ext.asyncio import AsyncSession\nfrom sqlalchemy import text\n"
            ),
        },
    )
    (root / "services" / "alpha" / "repository.py").unlink()
    assert room_violations(root) == [
        "alpha: services/alpha/handlers.py:2 uses sqlalchemy",
        "alpha: services/alpha/handlers.py:2 uses sqlalchemy.text",
        "alpha: services/alpha/routes/items.py:1 uses sqlalchemy",
        "alpha: services/alpha/routes/items.py:2 uses services.alpha.repository",
        "alpha: services/alpha/routes/items.py:2 uses services.alpha.repository.ItemRepository",
        "beta: api.py defines ['App'], not just create_app",
        "beta: no errors (errors.py or errors/)",
        "beta: no repository (repository.py or repository/)",
        "beta: no routes (a package)",
    ]


def test_the_length_checker_reports_long_modules_but_not_migrations(tmp_path):
    root = _tree(
        tmp_path,
        {
            "shared/short.py": "x = 1\n" * MAX_LINES,
            "tooling/long.py": "x = 1\n" * (MAX_LINES + 1),
            "migrations/versions/0001_big.py": "x = 1\n" * 5000,
        },
    )
    assert long_modules(root) == [f"tooling/long.py: {MAX_LINES + 1} lines"]


def _blocking_dependencies(routes) -> list[str]:
    """Routes whose endpoint or any dependency is a plain ``def`` (or a class whose
    ``__call__`` is): FastAPI runs those in its thread pool, a thread hop per request."""
    import inspect

    from fastapi.routing import APIRoute

    found = []

    def walk(route: str, dependant) -> None:
        call = dependant.call
        if call is not None:
            target = call if inspect.isroutine(call) else type(call).__call__
            if not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)):
                found.append(f"{route}: {getattr(call, '__name__', type(call).__name__)}")
        for sub in dependant.dependencies:
            walk(route, sub)

    for route in routes:
        if isinstance(route, APIRoute):
            walk(f"{sorted(route.methods)} {route.path}", route.dependant)
    return found


def test_no_route_or_dependency_runs_in_the_thread_pool():
    import importlib

    from shared.settings import Settings

    for service in ("identity", "billing", "campaign", "scraping"):
        app = importlib.import_module(f"services.{service}.api").create_app(Settings())
        assert _blocking_dependencies(app.routes) == [], service


def test_the_thread_pool_checker_names_a_plain_def_dependency():
    from fastapi import APIRouter, Depends

    router = APIRouter()

    def blocking() -> int:
        return 1

    async def fine() -> int:
        return 1

    @router.get("/x")
    async def endpoint(a: int = Depends(blocking), b: int = Depends(fine)) -> int:
        return a + b

    assert _blocking_dependencies(router.routes) == ["['GET'] /x: blocking"]
