"""``python -m tooling.cli``: the ``scout`` command without its console script (used by ``scout dev``)."""

from tooling.cli.main import main

main()
