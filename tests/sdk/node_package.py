"""Installing sdk/node as an app would: ``npm pack`` it, then ``npm install`` the tarball
(offline: the package has no dependencies) into an app folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk" / "node"


def install_packed_sdk(app: Path) -> Path:
    """``app`` (made if missing, given a package.json if it has none) with the packed SDK
    installed in its node_modules; answers the installed package's folder."""
    app.mkdir(parents=True, exist_ok=True)
    manifest = app / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "app", "version": "1.0.0", "private": true}')
    packed = subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(app.parent)],
        cwd=SDK,
        capture_output=True,
        text=True,
        check=True,
    )
    tarball = app.parent / packed.stdout.strip().splitlines()[-1]
    install = ["npm", "install", "--offline", "--no-audit", "--no-fund", "--silent", str(tarball)]
    subprocess.run(install, cwd=app, check=True, capture_output=True)
    return app / "node_modules" / "@sautikit" / "sdk"
