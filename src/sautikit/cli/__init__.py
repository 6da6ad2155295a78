"""The ``sautikit`` command: serve, config, db, workspaces, keys, demo."""

from sautikit.cli.main import app, main

__all__ = ["app", "main"]
