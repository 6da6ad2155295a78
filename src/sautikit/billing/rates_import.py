"""Parsing an operator's rate deck CSV (``sautikit rates import FILE``).

The file is UTF-8 CSV with a header naming its columns, in any order:

* ``prefix`` — ``+`` and 1–15 digits (E.164 without the rest of the number); required;
* ``rate_per_minute_minor`` — a non-negative whole number of minor units; required;
* ``destination`` — a label such as ``Kenya mobile``; required, may be empty;
* ``direction`` — ``outbound``, ``inbound`` or ``on_net`` (a call to a number this
  deployment holds); optional, empty means ``outbound``.

Every line is checked, and ``RateDeckError`` names each wrong line by its number (the
header is line 1). Parsing is all or nothing, so an import applies either the
whole file or none of it. A direction and prefix given twice is an error, not a silent
override. Nothing here touches the database; ``rating.store_rates`` applies the result.
"""

from __future__ import annotations

import csv
import io
import re

from sautikit.billing.rating import DIRECTIONS, RateLine

__all__ = ["COLUMNS", "MAX_RATE_PER_MINUTE_MINOR", "RateDeckError", "parse_rate_deck"]

COLUMNS: tuple[str, ...] = ("prefix", "destination", "direction", "rate_per_minute_minor")
_REQUIRED = frozenset({"prefix", "destination", "rate_per_minute_minor"})
# KES 1,000,000 a minute: anything above is a typo, and stays far inside a BIGINT price.
MAX_RATE_PER_MINUTE_MINOR = 100_000_000
_MAX_DESTINATION_LENGTH = 200
_SHOWN = 10  # problems spelled out in the message; ``problems`` keeps them all
_PREFIX = re.compile(r"\+[0-9]{1,15}")
_WHOLE_NUMBER = re.compile(r"[0-9]+")


class RateDeckError(ValueError):
    """A rate deck has wrong lines: ``problems`` holds (line number, reason) for each,
    1-based with the header as line 1; ``line`` is the first of them."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in problems[:_SHOWN])
        more = len(problems) - _SHOWN
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))
        self.problems = problems
        self.line = problems[0][0]


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RateDeckError([(line, "not UTF-8 text")]) from None


def _header(fields: list[str]) -> list[str]:
    names = [field.strip().lower() for field in fields]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; the columns are {', '.join(COLUMNS)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"column {repeated[0]!r} appears twice")
    missing = sorted(_REQUIRED - set(names))
    if missing:
        raise ValueError(f"the header lacks {', '.join(missing)}; expected {','.join(COLUMNS)}")
    return names


def _line(values: dict[str, str]) -> RateLine:
    prefix = values["prefix"].strip()
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix {prefix[:40]!r} must be '+' and 1–15 digits")
    destination = values["destination"].strip()
    if len(destination) > _MAX_DESTINATION_LENGTH or not destination.isprintable():
        raise ValueError(
            f"destination must be printable, at most {_MAX_DESTINATION_LENGTH} characters"
        )
    direction = values.get("direction", "").strip().lower() or "outbound"
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction[:40]!r} must be one of {', '.join(DIRECTIONS)}")
    rate = values["rate_per_minute_minor"].strip()
    if not _WHOLE_NUMBER.fullmatch(rate):
        raise ValueError(
            f"rate_per_minute_minor {rate[:40]!r} must be a whole number of minor units"
        )
    # The length check first: int() refuses strings of thousands of digits with ValueError.
    if len(rate) > 12 or int(rate) > MAX_RATE_PER_MINUTE_MINOR:
        raise ValueError(f"rate_per_minute_minor {rate[:20]} exceeds {MAX_RATE_PER_MINUTE_MINOR}")
    return RateLine(prefix, destination, direction, int(rate))


def parse_rate_deck(data: bytes | str) -> list[RateLine]:
    """Every line of a rate deck CSV, or ``RateDeckError`` naming every wrong line."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    lines: list[RateLine] = []
    problems: list[tuple[int, str]] = []
    first_seen: dict[tuple[str, str], int] = {}
    try:
        header = next(reader, None)
        if header is None:
            raise RateDeckError(
                [(1, f"the file is empty; expected the header {','.join(COLUMNS)}")]
            )
        try:
            names = _header(header)
        except ValueError as exc:
            raise RateDeckError([(1, str(exc))]) from None
        for fields in reader:
            number = reader.line_num
            if not any(field.strip() for field in fields):
                continue  # a blank line
            if len(fields) != len(names):
                problems.append((number, f"expected {len(names)} fields, found {len(fields)}"))
                continue
            try:
                line = _line(dict(zip(names, fields, strict=True)))
            except ValueError as exc:
                problems.append((number, str(exc)))
                continue
            key = (line.direction, line.prefix)
            if key in first_seen:
                problems.append(
                    (
                        number,
                        f"{line.direction} prefix {line.prefix} repeats line {first_seen[key]}",
                    )
                )
                continue
            first_seen[key] = number
            lines.append(line)
    except csv.Error as exc:  # unreadable from here on: report it and stop
        problems.append((reader.line_num or 1, f"not valid CSV: {exc}"))
    if not lines and not problems:
        problems.append((reader.line_num + 1, "no rates after the header"))
    if problems:
        raise RateDeckError(problems)
    return lines
