"""Digest authentication: published vectors, both sides of a challenge, and bad input."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sautikit.sip.digest import (
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    DigestError,
    DigestParseError,
    VerifyStatus,
    build_authorization,
    compute_ha1,
    parse_challenge,
    parse_credentials,
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- published vectors ------------------------------------------------------------------


def test_rfc2617_section_3_5_example() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = build_authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    credentials = parse_credentials(header)
    ha1 = md5("Mufasa:testrealm@host.com:Circle Of Life")
    ha2 = md5("GET:/dir/index.html")
    independent = md5(f"{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}")
    assert credentials.response == independent == "6629fae49393a05397450978507c4ef1"
    assert (credentials.qop, credentials.nc, credentials.cnonce) == ("auth", "00000001", "0a4f113b")
    assert credentials.opaque == "5ccc069c403ebaf9f0171e9517f40e41"


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize(
    ("algorithm", "hash_text", "published"),
    [
        ("MD5", md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_example(algorithm: str, hash_text, published: str) -> None:
    challenge = parse_challenge(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    credentials = parse_credentials(
        build_authorization(
            challenge,
            method="GET",
            uri="/dir/index.html",
            username="Mufasa",
            password="Circle of Life",
            cnonce=RFC7616_CNONCE,
        )
    )
    ha1 = hash_text("Mufasa:http-auth@example.org:Circle of Life")
    ha2 = hash_text("GET:/dir/index.html")
    independent = hash_text(f"{ha1}:{RFC7616_NONCE}:00000001:{RFC7616_CNONCE}:auth:{ha2}")
    assert credentials.response == independent == published
    assert credentials.algorithm == algorithm
    assert credentials.opaque == RFC7616_OPAQUE


@pytest.mark.parametrize(("algorithm", "hash_text"), [("MD5", md5), ("SHA-256", sha256)])
def test_ha1_is_the_hash_of_user_realm_password(algorithm: str, hash_text) -> None:
    assert compute_ha1("1001", "ws_123", "s3cret", algorithm) == hash_text("1001:ws_123:s3cret")
    assert compute_ha1("1001", "ws_123", "s3cret", algorithm + "-sess") == hash_text(
        "1001:ws_123:s3cret"
    )


def test_sess_variant_derives_the_session_key() -> None:
    challenge = DigestChallenge(realm="r", nonce="n1", algorithm="SHA-256-sess", qop=("auth",))
    credentials = parse_credentials(
        build_authorization(
            challenge, method="INVITE", uri="sip:x@y", username="u", password="p", cnonce="c1"
        )
    )
    session_ha1 = sha256(f"{sha256('u:r:p')}:n1:c1")
    expected = sha256(f"{session_ha1}:n1:00000001:c1:auth:{sha256('INVITE:sip:x@y')}")
    assert credentials.response == expected


def test_legacy_challenge_without_qop() -> None:
    challenge = parse_challenge('Digest realm="asterisk", nonce="4ce2fa9c", algorithm=MD5')
    header = build_authorization(
        challenge, method="REGISTER", uri="sip:10.0.0.1", username="alice", password="pw"
    )
    credentials = parse_credentials(header)
    ha1, ha2 = md5("alice:asterisk:pw"), md5("REGISTER:sip:10.0.0.1")
    assert credentials.response == md5(f"{ha1}:4ce2fa9c:{ha2}")
    assert credentials.qop is None and credentials.nc is None and credentials.cnonce is None
    assert "qop" not in header and "cnonce" not in header


def test_auth_int_hashes_the_body() -> None:
    challenge = DigestChallenge(realm="r", nonce="n", qop=("auth-int",))
    body = b"v=0\r\n"
    credentials = parse_credentials(
        build_authorization(
            challenge, method="INVITE", uri="sip:a@b", username="u", ha1=md5("u:r:p"), body=body
        )
    )
    ha2 = md5(f"INVITE:sip:a@b:{hashlib.md5(body).hexdigest()}")
    expected = md5(f"{md5('u:r:p')}:n:00000001:{credentials.cnonce}:auth-int:{ha2}")
    assert credentials.response == expected


def test_stored_ha1_answers_like_the_password() -> None:
    challenge = DigestChallenge(realm="r", nonce="n", algorithm="SHA-256", qop=("auth",))
    common = {"method": "REGISTER", "uri": "sip:r", "username": "u", "cnonce": "c", "nc": 7}
    by_password = build_authorization(challenge, password="p", **common)
    by_ha1 = build_authorization(challenge, ha1=compute_ha1("u", "r", "p", "SHA-256"), **common)
    assert by_password == by_ha1
    assert "nc=00000007" in by_password


def test_uac_refuses_what_it_cannot_do() -> None:
    with pytest.raises(DigestError, match="algorithm"):
        build_authorization(
            DigestChallenge(realm="r", nonce="n", algorithm="AKAv1-MD5"),
            method="REGISTER",
            uri="sip:r",
            username="u",
            password="p",
        )
    with pytest.raises(DigestError, match="qop"):
        build_authorization(
            DigestChallenge(realm="r", nonce="n", qop=("auth-conf",)),
            method="REGISTER",
            uri="sip:r",
            username="u",
            password="p",
        )
    with pytest.raises(ValueError, match="password"):
        build_authorization(
            DigestChallenge(realm="r", nonce="n"), method="A", uri="u", username="u"
        )


# --- header values ----------------------------------------------------------------------


def test_parses_quoted_escapes_commas_and_case() -> None:
    challenge = parse_challenge(
        'digest\t REALM = "a \\"quoted\\", realm" ,, nonce="x,y" , algorithm=sha-256,'
        'qop="Auth",stale=TRUE, domain="sip:a sip:b", opaque=\'raw\''
    )
    assert challenge.realm == 'a "quoted", realm'
    assert challenge.nonce == "x,y"
    assert challenge.algorithm == "SHA-256"
    assert challenge.qop == ("auth",)
    assert challenge.stale is True
    assert challenge.domain == "sip:a sip:b"
    assert challenge.opaque == "'raw'"
    assert parse_challenge('Digest realm="a\tb", nonce="n"').realm == "a\tb"


def test_challenge_and_credentials_encode_and_parse_back() -> None:
    challenge = DigestChallenge(
        realm='r "1" \\', nonce="n", algorithm="SHA-256", qop=("auth",), opaque="o", stale=True
    )
    assert parse_challenge(challenge.encode()) == challenge
    credentials = DigestCredentials(
        username='al"ice',
        realm="r",
        nonce="n",
        uri="sip:bob@example.com;transport=tcp",
        response="abc",
        algorithm="MD5",
        qop="auth",
        nc="0000000a",
        cnonce="c",
        opaque="o",
    )
    assert parse_credentials(credentials.encode()) == credentials
    assert credentials.nonce_count == 10


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Basic realm="x"', "not a Digest header value"),
        ("Digest", "missing realm, nonce"),
        ('Digest realm="x"', "missing nonce"),
        ('Digest realm="x, nonce=y', "unterminated quoted string"),
        ('Digest realm="x" nonce="y"', "expected ',' after parameter 'realm'"),
        ('Digest realm="x", realm="y", nonce="n"', "'realm' appears twice"),
        ('Digest realm, nonce="n"', "'realm' has no '=' value"),
        ('Digest realm=, nonce="n"', "'realm' has a bad unquoted value"),
        ('Digest ="x"', "expected a parameter name at '=\"x\"'"),
        ('Digest realm="a\rb", nonce="n"', "control character"),
        ('Digest realm="\ud800", nonce="n"', "header value is not text (character 15)"),
    ],
)
def test_bad_challenges_raise_digest_parse_error(value: str, message: str) -> None:
    with pytest.raises(DigestParseError, match=re.escape(message)):
        parse_challenge(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest username="u", realm="r", nonce="n", uri="x"', "missing response"),
        (
            'Digest username="u", realm="r", nonce="n", uri="x", response="r", qop=auth',
            "missing nc, cnonce",
        ),
        (
            'Digest username="u", realm="r", nonce="n", uri="x", response="r", qop=auth, '
            'nc=1, cnonce="c"',
            "nc must be eight hex digits",
        ),
    ],
)
def test_bad_credentials_raise_digest_parse_error(value: str, message: str) -> None:
    with pytest.raises(DigestParseError, match=re.escape(message)):
        parse_credentials(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsers_raise_only_digest_parse_error(value: str) -> None:
    for parse in (parse_challenge, parse_credentials):
        try:
            parse(value)
        except DigestParseError as error:
            assert str(error)
        try:
            parse("Digest " + value)
        except DigestParseError as error:
            assert str(error)


# --- the UAS side -------------------------------------------------------------------------

REALM = "ws_9f2c"
USERS = {"1001": "correct horse", "1002": "battery staple"}


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else compute_ha1(username, realm, password, algorithm)


def authenticator(clock: FakeClock, **options) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, b"server secret", clock=clock, **options)


def answer(
    challenge_value: str,
    *,
    username: str = "1001",
    password: str | None = None,
    nc: int = 1,
    method: str = "REGISTER",
    uri: str = "sip:sautikit.example",
) -> str:
    return build_authorization(
        parse_challenge(challenge_value),
        method=method,
        uri=uri,
        username=username,
        password=USERS.get(username, "") if password is None else password,
        nc=nc,
    )


def test_challenges_offer_sha256_first_then_md5_with_one_nonce() -> None:
    values = authenticator(FakeClock()).challenge()
    challenges = [parse_challenge(v) for v in values]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert {c.nonce for c in challenges} == {challenges[0].nonce}
    assert all(c.realm == REALM and c.qop == ("auth",) and not c.stale for c in challenges)


@pytest.mark.parametrize("index", [0, 1], ids=["SHA-256", "MD5"])
def test_uac_and_uas_round_trip(index: int) -> None:
    auth = authenticator(FakeClock())
    header = answer(auth.challenge()[index])
    result = auth.verify(header, "REGISTER", lookup, request_uri="sip:sautikit.example")
    assert result.status is VerifyStatus.OK and result.ok
    assert result.username == "1001"


def test_every_supported_algorithm_verifies() -> None:
    auth = authenticator(FakeClock())
    for algorithm in ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess"):
        [value] = auth.challenge((algorithm,))
        assert auth.verify(answer(value), "REGISTER", lookup).ok, algorithm


def test_expired_nonce_with_right_password_is_stale() -> None:
    clock = FakeClock()
    auth = authenticator(clock, nonce_lifetime=60)
    value = auth.challenge()[0]
    clock.now += 61
    result = auth.verify(answer(value), "REGISTER", lookup)
    assert result.status is VerifyStatus.STALE
    assert all(parse_challenge(v).stale for v in auth.challenge(stale=True))
    fresh = auth.challenge()[0]
    assert auth.verify(answer(fresh), "REGISTER", lookup).ok


def test_expired_nonce_with_wrong_password_is_bad_not_stale() -> None:
    clock = FakeClock()
    auth = authenticator(clock, nonce_lifetime=60)
    value = auth.challenge()[0]
    clock.now += 61
    result = auth.verify(answer(value, password="guess"), "REGISTER", lookup)
    assert result.status is VerifyStatus.BAD


def test_wrong_password_is_bad() -> None:
    auth = authenticator(FakeClock())
    result = auth.verify(answer(auth.challenge()[0], password="guess"), "REGISTER", lookup)
    assert result.status is VerifyStatus.BAD
    assert result.reason == "wrong response"


def test_replayed_nonce_count_is_refused_and_the_next_count_accepted() -> None:
    auth = authenticator(FakeClock())
    value = auth.challenge()[0]
    first = answer(value, nc=1)
    assert auth.verify(first, "REGISTER", lookup).ok
    replay = auth.verify(first, "REGISTER", lookup)
    assert replay.status is VerifyStatus.STALE and replay.reason == "nonce count reused"
    assert auth.verify(answer(value, nc=2), "REGISTER", lookup).ok
    assert not auth.verify(answer(value, nc=2), "REGISTER", lookup).ok


def test_tampered_or_foreign_nonce_is_bad() -> None:
    clock = FakeClock()
    auth = authenticator(clock)
    nonce = parse_challenge(auth.challenge()[0]).nonce
    issued, random_part, seal = nonce.split(".")
    later = f"{int(issued, 16) + 3600:x}.{random_part}.{seal}"
    forged = DigestChallenge(realm=REALM, nonce=later, qop=("auth",)).encode()
    assert auth.verify(answer(forged), "REGISTER", lookup).reason == "nonce was not issued here"
    other = DigestAuthenticator(REALM, b"another secret", clock=clock).challenge()[0]
    assert auth.verify(answer(other), "REGISTER", lookup).status is VerifyStatus.BAD
    made_up = DigestChallenge(realm=REALM, nonce="12345", qop=("auth",)).encode()
    assert auth.verify(answer(made_up), "REGISTER", lookup).status is VerifyStatus.BAD


def test_nonce_from_another_process_with_the_same_secret_is_accepted() -> None:
    clock = FakeClock()
    value = authenticator(clock).challenge()[0]
    assert authenticator(clock).verify(answer(value), "REGISTER", lookup).ok


@pytest.mark.parametrize(
    ("header_for", "reason"),
    [
        (lambda v: answer(v, username="9999"), "unknown user"),
        (lambda v: answer(v.replace(REALM, "ws_other")), "wrong realm"),
        (lambda v: answer(v, uri="sip:elsewhere"), "uri does not match the request"),
        (lambda v: answer(v, method="INVITE"), "wrong response"),
        (lambda v: answer(v.replace(', qop="auth"', "")), "missing or unknown qop"),
        (lambda v: "Digest garbage", "malformed credentials"),
    ],
)
def test_refusals_name_their_reason(header_for, reason: str) -> None:
    auth = authenticator(FakeClock())
    result = auth.verify(
        header_for(auth.challenge()[0]), "REGISTER", lookup, request_uri="sip:sautikit.example"
    )
    assert result.status is VerifyStatus.BAD
    assert result.reason.startswith(reason)


def test_replay_cache_is_bounded_and_eviction_never_reopens_a_replay() -> None:
    clock = FakeClock()
    auth = authenticator(clock, max_nonces=2)
    values = [auth.challenge()[0] for _ in range(3)]
    for value in values:
        assert auth.verify(answer(value, nc=1), "REGISTER", lookup).ok
    # The first nonce's count was evicted: it must not be usable again from nc=1.
    assert auth.verify(answer(values[0], nc=1), "REGISTER", lookup).status is VerifyStatus.STALE
    clock.now += 1
    assert auth.verify(answer(auth.challenge()[0]), "REGISTER", lookup).ok


HEADER_SAFE = st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"])


@settings(max_examples=100, deadline=None)
@given(
    username=st.text(HEADER_SAFE, min_size=1, max_size=20),
    uri=st.text(HEADER_SAFE, min_size=1, max_size=40),
    method=st.sampled_from(["REGISTER", "INVITE", "BYE"]),
)
def test_any_username_and_uri_survive_the_header_round_trip(
    username: str, uri: str, method: str
) -> None:
    auth = authenticator(FakeClock())
    header = build_authorization(
        parse_challenge(auth.challenge()[0]),
        method=method,
        uri=uri,
        username=username,
        password="pw",
    )
    result = auth.verify(header, method, lambda u, r, a: compute_ha1(u, r, "pw", a))
    assert result.ok and result.username == username


def test_values_that_would_inject_headers_are_refused() -> None:
    with pytest.raises(DigestError, match="CR, LF or NUL"):
        build_authorization(
            DigestChallenge(realm="r", nonce="n", qop=("auth",)),
            method="REGISTER",
            uri="sip:r",
            username="u\r\nVia: evil",
            password="p",
        )


def test_header_bytes_decoded_with_surrogateescape_verify() -> None:
    auth = authenticator(FakeClock())
    username = b"caf\xe9".decode("utf-8", "surrogateescape")
    header = build_authorization(
        parse_challenge(auth.challenge()[0]),
        method="REGISTER",
        uri="sip:r",
        username=username,
        password="pw",
    )
    ha1 = hashlib.sha256(b"caf\xe9:" + REALM.encode() + b":pw").hexdigest()
    assert auth.verify(header, "REGISTER", lambda u, r, a: ha1).ok
