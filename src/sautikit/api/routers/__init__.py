"""One module per resource; each exposes ``router``, and every module here is served.

Discovering the modules keeps adding a resource to one new file, with nothing to register.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

__all__ = ["all_routers"]


def all_routers() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(module.router)
    return found
