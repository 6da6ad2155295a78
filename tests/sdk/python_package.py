"""Installing sdk/python as an app would: build the ``sautikit-sdk`` wheel, then install it
into a fresh virtual environment with its declared dependencies and nothing of the server.

The dependencies come from the package index pip is configured with, pinned to the
versions this checkout's environment already runs (so no newer release is fetched).
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPOSITORY = Path(__file__).resolve().parents[2]
SDK = REPOSITORY / "sdk" / "python"


@dataclass(frozen=True)
class InstalledSdk:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment without what would reach the checkout's code."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return env | extra

    def requires(self) -> list[Requirement]:
        """The wheel's declared dependencies (its METADATA's ``Requires-Dist``)."""
        with zipfile.ZipFile(self.wheel) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            headers = email.parser.Parser().parsestr(archive.read(name).decode())
        return [Requirement(value) for value in headers.get_all("Requires-Dist") or []]


def build_wheel(destination: Path) -> Path:
    """``pip wheel sdk/python``, offline (hatchling from this environment)."""
    offline = ["--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(destination)]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, str(SDK)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = destination.glob("sautikit_sdk-*.whl")
    return wheel


def _pinned(names: list[str]) -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in names]


def install_sdk(folder: Path, *app_requirements: str) -> InstalledSdk:
    """A fresh venv in ``folder`` holding the SDK wheel (``--no-deps``), then its declared
    dependencies and ``app_requirements`` (an example's framework), each pinned."""
    wheel = build_wheel(folder / "dist")
    installed = InstalledSdk(wheel, folder / "venv")
    subprocess.run([sys.executable, "-m", "venv", str(installed.venv)], check=True, timeout=300)
    pip = [str(installed.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    wanted = [requirement.name for requirement in installed.requires()] + list(app_requirements)
    done = subprocess.run(
        [*pip, *_pinned(wanted)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return installed
