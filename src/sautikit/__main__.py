"""``python -m sautikit`` is the ``sautikit`` command."""

from sautikit.cli import main

main()
