"""The docs' Python samples run as printed: every ```python block of the verb guide
(docs/verbs/) and of docs/sdk.md that needs no running server is executed, and each
action or action document a block ends with is one the server accepts."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from sautikit.voice.actions import parse_actions

DOCS = Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# What a sample leans on from the text around it: the callback's fields, a secret.
_CONTEXT: dict[str, Any] = {
    "fields": {"CallId": "c1", "From": "+254722999000", "To": "+254700000001"},
    "SECRET": "whsec_docs",
}


def _samples() -> list[Any]:
    found = []
    for page in sorted([*DOCS.glob("verbs/*.md"), DOCS / "sdk.md"]):
        for number, code in enumerate(_BLOCK.findall(page.read_text()), start=1):
            # A sample that talks to a server (an API key, a client) is run by the
            # SDK's own tests against a real one, and one that serves forever is not
            # run at all; every other sample is.
            live = any(
                mark in code for mark in ("sk_live_", "Sautikit(", "client.", "asyncio.Future()")
            )
            found.append(
                pytest.param(
                    code,
                    id=f"{page.relative_to(DOCS)}#{number}",
                    marks=pytest.mark.skip(reason="needs a server or serves") if live else (),
                )
            )
    return found


@pytest.mark.parametrize("code", _samples())
def test_the_sample_runs_and_its_actions_are_accepted(code: str) -> None:
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    namespace = dict(_CONTEXT)
    exec(compile(tree, "<doc sample>", "exec"), namespace)
    if last is None:
        return
    value = eval(compile(ast.Expression(last.value), "<doc sample>", "eval"), namespace)
    if isinstance(value, dict):
        document = value if "actions" in value else {"actions": [value]}
        assert list(parse_actions(document))
