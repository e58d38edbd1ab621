"""``python -m backplan``: the same as the ``backplan`` command."""

from backplan.cli import main

main()
