"""The web console's pages, served beside the API (``/console``; see sautikit.console)."""

from sautikit.console.pages import router

__all__ = ["router"]
