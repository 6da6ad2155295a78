"""Rate deck CSV parsing: good decks, and every wrong line named by its number."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.billing.rates_import import RateDeckError, parse_rate_deck
from sautikit.billing.rating import RateLine

GOOD_DECK = (
    b"\xef\xbb\xbfprefix,destination,direction,rate_per_minute_minor\r\n"
    b"+254,Kenya,outbound,300\r\n"
    b"+2547,Kenya mobile,,250\r\n"
    b"\r\n"
    b'+254,"Kenya, inbound",INBOUND,0\r\n'
)


def test_a_deck_parses_with_bom_crlf_blank_lines_and_a_default_direction() -> None:
    assert parse_rate_deck(GOOD_DECK) == [
        RateLine("+254", "Kenya", "outbound", 300),
        RateLine("+2547", "Kenya mobile", "outbound", 250),
        RateLine("+254", "Kenya, inbound", "inbound", 0),
    ]


def test_columns_may_come_in_any_order_and_direction_may_be_left_out() -> None:
    deck = "rate_per_minute_minor , Prefix,destination\n7,+1,North America\n"
    assert parse_rate_deck(deck) == [RateLine("+1", "North America", "outbound", 7)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("254,Kenya,outbound,300", "prefix '254' must be '+' and 1–15 digits"),
        ("+,Kenya,outbound,300", "must be '+' and 1–15 digits"),
        ("+2547x,Kenya,outbound,300", "must be '+' and 1–15 digits"),
        ("+1234567890123456,Far,outbound,300", "must be '+' and 1–15 digits"),
        ("+254,Kenya,outbound,-1", "must be a whole number"),
        ("+254,Kenya,outbound,3.00", "must be a whole number"),
        ("+254,Kenya,outbound,", "must be a whole number"),
        ("+254,Kenya,outbound,٣٠٠", "must be a whole number"),
        ("+254,Kenya,outbound,100000001", "exceeds 100000000"),
        ("+254,Kenya,outbound," + "9" * 5000, "exceeds"),
        ("+254,Kenya,sideways,300", "direction 'sideways' must be one of outbound, inbound"),
        ("+254,Kenya,300", "expected 4 fields, found 3"),
        ("+254,Kenya,outbound,300,extra", "expected 4 fields, found 5"),
        ("+254,Ken\tya,outbound,300", "destination must be printable"),
    ],
)
def test_a_wrong_line_is_named_by_its_number(row: str, reason: str) -> None:
    deck = f"prefix,destination,direction,rate_per_minute_minor\n+1,US,outbound,7\n{row}\n"
    with pytest.raises(RateDeckError) as caught:
        parse_rate_deck(deck)
    assert caught.value.line == 3
    assert reason in str(caught.value)
    assert str(caught.value).startswith("line 3: ")


def test_every_wrong_line_is_reported_not_just_the_first() -> None:
    deck = (
        "prefix,destination,direction,rate_per_minute_minor\n"
        "+254,Kenya,outbound,300\n"
        "bad,Kenya,outbound,300\n"
        "+255,Tanzania,outbound,400\n"
        "+256,Uganda,outbound,lots\n"
    )
    with pytest.raises(RateDeckError) as caught:
        parse_rate_deck(deck)
    assert [line for line, _ in caught.value.problems] == [3, 5]


def test_a_repeated_prefix_names_both_lines() -> None:
    deck = (
        "prefix,destination,direction,rate_per_minute_minor\n"
        "+254,Kenya,outbound,300\n"
        "+254,Kenya inbound,inbound,0\n"
        "+254,Kenya again,,290\n"
    )
    with pytest.raises(RateDeckError) as caught:
        parse_rate_deck(deck)
    assert str(caught.value) == "line 4: outbound prefix +254 repeats line 2"


@pytest.mark.parametrize(
    ("deck", "reason"),
    [
        ("", "the file is empty"),
        ("prefix,rate_per_minute_minor\n+254,300\n", "the header lacks destination"),
        ("+254,Kenya,outbound,300\n", "unknown column '+254'"),
        ("prefix,destination,prefix,rate_per_minute_minor\n", "column 'prefix' appears twice"),
        ("prefix,destination,direction,rate_per_minute_minor\n", "no rates after the header"),
    ],
)
def test_a_missing_or_wrong_header_is_line_one(deck: str, reason: str) -> None:
    with pytest.raises(RateDeckError) as caught:
        parse_rate_deck(deck)
    assert reason in str(caught.value)
    assert caught.value.line in {1, 2}


def test_bytes_that_are_not_utf8_name_their_line() -> None:
    deck = b"prefix,destination,direction,rate_per_minute_minor\n+254,K\xe9nya,outbound,300\n"
    with pytest.raises(RateDeckError, match="line 2: not UTF-8 text"):
        parse_rate_deck(deck)


def test_an_unterminated_quote_is_invalid_csv() -> None:
    deck = 'prefix,destination,direction,rate_per_minute_minor\n+254,"Kenya,outbound,300'
    with pytest.raises(RateDeckError, match="not valid CSV"):
        parse_rate_deck(deck)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_rate_deck_error(data: bytes) -> None:
    try:
        parse_rate_deck(data)
    except RateDeckError as exc:
        assert exc.problems and all(line >= 1 for line, _ in exc.problems)


@given(st.text(alphabet='+0123456789,"\n -abcinoutbd', max_size=200))
def test_csv_like_text_parses_or_raises_rate_deck_error(body: str) -> None:
    with contextlib.suppress(RateDeckError):
        parse_rate_deck("prefix,destination,direction,rate_per_minute_minor\n" + body)


rate_lines = st.builds(
    RateLine,
    prefix=st.from_regex(r"\+[0-9]{1,15}", fullmatch=True),
    destination=st.text(
        st.characters(categories=["L", "N"], include_characters=" "), max_size=30
    ).map(str.strip),
    direction=st.sampled_from(["outbound", "inbound"]),
    rate_per_minute_minor=st.integers(0, 100_000_000),
)


@given(st.lists(rate_lines, min_size=1, max_size=8, unique_by=lambda r: (r.direction, r.prefix)))
def test_a_written_deck_reads_back_as_written(lines: list[RateLine]) -> None:
    rows = [f'{r.prefix},"{r.destination}",{r.direction},{r.rate_per_minute_minor}' for r in lines]
    deck = "prefix,destination,direction,rate_per_minute_minor\n" + "\n".join(rows) + "\n"
    assert parse_rate_deck(deck) == lines
