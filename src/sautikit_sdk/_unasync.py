"""Generate the sync client (``_sync.py``) from the async one (``_async.py``).

The resources are written once, as async code; the sync client is the same text with the
asyncio spelled away, the technique of httpcore's and urllib3's ``unasync``. Run
``python -m sautikit_sdk._unasync`` after editing ``_async.py``; ``--check`` exits 1
when ``_sync.py`` is stale (the test suite checks the same).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Final

__all__ = ["ASYNC_SOURCE", "SYNC_TARGET", "generate", "main"]

ASYNC_SOURCE: Final = Path(__file__).with_name("_async.py")
SYNC_TARGET: Final = Path(__file__).with_name("_sync.py")

_HEADER: Final = '''"""The sync client: transport, pagination and every resource.

GENERATED from ``_async.py`` by ``python -m sautikit_sdk._unasync``; do not edit.
"""

# An async generator cannot ``yield from``; its sync twin keeps the same loop.
# ruff: noqa: UP028
'''

# Applied in order; each is a whole-word rewrite of the async spelling.
_REWRITES: Final = (
    (r"\bimport asyncio\b", "import time"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bAsync([A-Z_]\w*)", r"\1"),
    (r"\b_Async(\w+)", r"_\1"),
    (r"  # noqa: ASYNC\d+[^\n]*", ""),  # asyncio's lints mean nothing in sync code
)


def _rewrite(source: str) -> str:
    body = source.split('"""', 2)[2].lstrip("\n")  # drop the async module's docstring
    for pattern, replacement in _REWRITES:
        body = re.sub(pattern, replacement, body)
    return _HEADER + "\n" + body


def _ruff(*arguments: str, source: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(SYNC_TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _format(source: str) -> str:
    """Sort the imports (``time`` sorts elsewhere than ``asyncio``) and reformat the lines
    the rewrite shortened, both as ruff would."""
    sorted_imports = _ruff("check", "--select", "I", "--fix", "--exit-zero", source=source)
    return _ruff("format", source=sorted_imports)


def generate() -> str:
    return _format(_rewrite(ASYNC_SOURCE.read_text()))


def main(argv: list[str]) -> int:
    generated = generate()
    if "--check" in argv:
        stale = not SYNC_TARGET.exists() or SYNC_TARGET.read_text() != generated
        if stale:
            print(f"{SYNC_TARGET} is stale: run python -m sautikit_sdk._unasync")
        return int(stale)
    SYNC_TARGET.write_text(generated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
