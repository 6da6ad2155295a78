"""Browsable API docs that work offline: Swagger UI at ``/docs``, Redoc at ``/reference``.

FastAPI's own pages load their JavaScript and CSS from a CDN, so on a server without
internet (or a developer's laptop on a plane) they are blank. Here both pages use the
assets the ``fastapi-offline`` package installs with Sautikit, served from
``/docs/assets``; no page asks anything of another host (no fonts, no favicon, no
validator badge, and Redoc's credit image is the local favicon).

Swagger UI keeps the key given to its Authorize button across reloads
(``persistAuthorization``), and its "Try it out" sends it as ``Authorization: Bearer``
on every keyed operation (the ``bearer`` scheme of :mod:`sautikit.api.openapi`).
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

__all__ = ["ASSETS_PATH", "DOCS_PATH", "REFERENCE_PATH", "install_docs"]

DOCS_PATH = "/docs"
REFERENCE_PATH = "/reference"
ASSETS_PATH = "/docs/assets"
_OAUTH_REDIRECT = "/docs/oauth2-redirect"
_REDOC_SCRIPT = "/reference/redoc.js"
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
"""The one thing Redoc's bundle fetches from elsewhere (its sidebar credit's image)."""


def _assets_folder() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


@functools.cache
def _redoc_script() -> bytes:
    """Redoc's bundle with its credit's image pointed at the local favicon."""
    script = (_assets_folder() / "redoc.standalone.js").read_text(encoding="utf-8")
    return script.replace(_REDOC_LOGO, f"{ASSETS_PATH}/favicon.png").encode()


def install_docs(app: FastAPI) -> None:
    """Serve the two pages and their assets; ``app`` was made with FastAPI's own docs
    turned off (``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_PATH, StaticFiles(directory=_assets_folder()), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            oauth2_redirect_url=f"{root}{_OAUTH_REDIRECT}",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )

    @app.get(_OAUTH_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(_REDOC_SCRIPT, include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(
            _redoc_script(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get(REFERENCE_PATH, include_in_schema=False)
    async def reference(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API reference",
            redoc_js_url=f"{root}{_REDOC_SCRIPT}",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
