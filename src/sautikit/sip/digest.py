"""HTTP Digest authentication as SIP uses it, for both sides of a challenge.

Pure functions and objects over header *values*; reading and writing the
``WWW-Authenticate`` / ``Proxy-Authenticate`` / ``Authorization`` / ``Proxy-Authorization``
headers themselves is the message layer's job.

* :func:`parse_challenge` and :func:`parse_credentials` read header values into
  :class:`DigestChallenge` and :class:`DigestCredentials` (RFC 7616 §3.3 and §3.4, with the
  RFC 7235 §2.1 auth-param syntax: tokens, quoted strings with backslash escapes, commas
  inside quotes). Bad input raises :class:`DigestParseError` and nothing else.
* Algorithms ``MD5``, ``MD5-sess``, ``SHA-256`` and ``SHA-256-sess`` (RFC 7616 §3.4.2,
  RFC 8760 for SIP), with ``qop=auth``, ``qop=auth-int`` and the RFC 2069 no-qop form a
  few carriers still send (RFC 2617 §3.2.2.1).
* :func:`compute_ha1` makes the ``H(username:realm:password)`` value Sautikit stores
  instead of device passwords.
* UAC side: :func:`build_authorization` answers a carrier's challenge.
* UAS side: :class:`DigestAuthenticator` issues stateless nonces (a timestamp and a random
  part sealed with an HMAC of a server secret, so any process holding the secret can check
  them and they expire by themselves), builds challenges strongest algorithm first
  (RFC 8760 §2.4) and verifies credentials in constant time, with ``stale=true`` for an
  expired nonce (RFC 7616 §3.3) and a bounded nonce-count cache against replay (§3.4.5).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "CHALLENGE_ALGORITHMS",
    "DEFAULT_CHALLENGE_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestCredentials",
    "DigestError",
    "DigestParseError",
    "Ha1Lookup",
    "VerifyResult",
    "VerifyStatus",
    "build_authorization",
    "challenge_algorithms",
    "compute_ha1",
    "parse_challenge",
    "parse_credentials",
]


class DigestError(ValueError):
    """A digest exchange Sautikit cannot take part in (unknown algorithm or qop)."""


class DigestParseError(DigestError):
    """A header value is not a well-formed Digest challenge or credentials.

    ``str(error)`` is one readable line, safe to log.
    """


# Canonical spelling of each algorithm, looked up case-insensitively (RFC 7616 §3.3).
_ALGORITHMS = {name.lower(): name for name in ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")}
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(_ALGORITHMS.values())

#: What a registrar challenges with unless told otherwise: MD5 alone. Every phone answers
#: it; baresip 1.0 (libre) gives up on the whole 401 when any challenge names SHA-256
#: ("Function not implemented"), and SIPp 3.6 answers only the first challenge.
#: Linphone 5.1 answers either; an operator whose phones all speak SHA-256 can offer it.
DEFAULT_CHALLENGE_ALGORITHMS: tuple[str, ...] = ("MD5",)

#: Algorithms a registrar may offer (the ``-sess`` variants are answered, never offered).
CHALLENGE_ALGORITHMS: tuple[str, ...] = ("SHA-256", "MD5")


def challenge_algorithms(names: str | Sequence[str]) -> tuple[str, ...]:
    """Algorithms to offer, in canonical spelling and order given ("SHA-256, MD5" or a
    sequence); raises :class:`DigestError` for an empty list or one we cannot offer."""
    items = names.split(",") if isinstance(names, str) else list(names)
    chosen: list[str] = []
    for item in items:
        canonical = _canonical_algorithm(item.strip())
        if canonical not in CHALLENGE_ALGORITHMS:
            raise DigestError(
                f"digest algorithm {item.strip()!r:.40} is not one of "
                + ", ".join(CHALLENGE_ALGORITHMS)
            )
        if canonical not in chosen:
            chosen.append(canonical)
    if not chosen:
        raise DigestError("at least one digest algorithm must be offered")
    return tuple(chosen)


_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}

# RFC 7230 §3.2.6 tchar.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_HEX = frozenset("0123456789abcdefABCDEF")


def _canonical_algorithm(name: str) -> str:
    """Known algorithms in their RFC spelling; unknown ones as received."""
    return _ALGORITHMS.get(name.lower(), name)


def _base_algorithm(algorithm: str) -> str:
    """``SHA-256-sess`` → ``SHA-256``: the hash that the stored HA1 was made with."""
    canonical = _canonical_algorithm(algorithm)
    if canonical not in SUPPORTED_ALGORITHMS:
        raise DigestError(f"unsupported digest algorithm {algorithm!r:.40}")
    return canonical.removesuffix("-sess")


def _hash(algorithm: str, data: str | bytes) -> str:
    if isinstance(data, str):
        # surrogateescape gives back the exact bytes of a header decoded that way.
        data = data.encode("utf-8", "surrogateescape")
    return _HASHES[_base_algorithm(algorithm)](data).hexdigest()


# ---------------------------------------------------------------------------------------
# Header values


def _quote(value: str) -> str:
    if any(char in "\x00\r\n" for char in value):
        # A header value cannot carry these: letting them through would inject headers.
        raise DigestError("digest values cannot contain CR, LF or NUL")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _parse_auth_params(text: str) -> dict[str, str]:
    """``name=value`` pairs separated by commas (RFC 7235 §2.1); names lower-cased."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and text[i] in _TOKEN_CHARS:
            i += 1
        name = text[start:i].lower()
        if not name:
            raise DigestParseError(f"expected a parameter name at {text[i : i + 20]!r}")
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            raise DigestParseError(f"parameter {name!r:.40} has no '=' value")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            value, i = _read_quoted(text, i)
        else:
            start = i
            while i < n and text[i] not in ", \t":
                i += 1
            value = text[start:i]
            if not value or any(c in _QUOTED_ONLY for c in value):
                raise DigestParseError(f"parameter {name!r:.40} has a bad unquoted value")
        if name in params:
            raise DigestParseError(f"parameter {name!r:.40} appears twice")
        params[name] = value
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise DigestParseError(f"expected ',' after parameter {name!r:.40}")


# Characters a bare token value may not hold; they need a quoted string.
_QUOTED_ONLY = frozenset('"\\\x00\r\n')


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted string starting at ``text[i] == '"'`` and the index after it."""
    chars: list[str] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(chars), i + 1
        if char == "\\":
            i += 1
            if i >= len(text):
                break
            char = text[i]
        if char in "\x00\r\n":
            raise DigestParseError("control character inside a quoted string")
        chars.append(char)
        i += 1
    raise DigestParseError("unterminated quoted string")


def _split_scheme(value: str) -> dict[str, str]:
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as error:
        raise DigestParseError(f"header value is not text (character {error.start + 1})") from None
    value = value.strip(" \t")
    split_at = next((i for i, char in enumerate(value) if char in " \t"), len(value))
    scheme, rest = value[:split_at], value[split_at:]
    if scheme.lower() != "digest":
        raise DigestParseError(f"not a Digest header value (scheme {scheme!r:.20})")
    return _parse_auth_params(rest)


def _required(params: dict[str, str], *names: str) -> None:
    missing = [name for name in names if name not in params]
    if missing:
        raise DigestParseError(f"missing {', '.join(missing)}")


@dataclass(frozen=True)
class DigestChallenge:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest challenge (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None

    def encode(self) -> str:
        """The header value."""
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        parts += [f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)


def parse_challenge(value: str) -> DigestChallenge:
    """Read one Digest challenge; raise :class:`DigestParseError` on bad input."""
    params = _split_scheme(value)
    _required(params, "realm", "nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=_canonical_algorithm(params.get("algorithm", "MD5")),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "false").lower() == "true",
        domain=params.get("domain"),
    )


@dataclass(frozen=True)
class DigestCredentials:
    """An ``Authorization`` / ``Proxy-Authorization`` Digest answer (RFC 7616 §3.4).

    ``nc`` is kept exactly as sent (eight hex digits), since the response hashes that text.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @property
    def nonce_count(self) -> int | None:
        return None if self.nc is None else int(self.nc, 16)

    def encode(self) -> str:
        """The header value."""
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={_quote(self.cnonce or '')}"]
        return "Digest " + ", ".join(parts)


def parse_credentials(value: str) -> DigestCredentials:
    """Read Digest credentials; raise :class:`DigestParseError` on bad input."""
    params = _split_scheme(value)
    _required(params, "username", "realm", "nonce", "uri", "response")
    qop = params.get("qop")
    nc = params.get("nc")
    if qop is not None:
        _required(params, "nc", "cnonce")
    if nc is not None and (len(nc) != 8 or not set(nc) <= _HEX):
        raise DigestParseError(f"nc must be eight hex digits, got {nc!r:.20}")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=_canonical_algorithm(params.get("algorithm", "MD5")),
        qop=None if qop is None else qop.lower(),
        nc=nc,
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
    )


# ---------------------------------------------------------------------------------------
# Hashes


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username:realm:password)`` in hex: what Sautikit stores for a device.

    For the ``-sess`` algorithms this is still the plain value; the session key is derived
    from it per request. Raises :class:`DigestError` for an unknown algorithm.
    """
    return _hash(algorithm, f"{username}:{realm}:{password}")


def _response(
    *,
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes,
) -> str:
    """The request-digest of RFC 7616 §3.4.1 (and RFC 2617 §3.2.2.1 without qop)."""
    if _canonical_algorithm(algorithm).endswith("-sess"):
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _hash(algorithm, f"{method}:{uri}:{_hash(algorithm, body)}")
    else:
        ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ---------------------------------------------------------------------------------------
# UAC side


def build_authorization(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str | None = None,
    ha1: str | None = None,
    cnonce: str | None = None,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenge``.

    Give either the ``password`` or its stored ``ha1``. ``qop=auth`` is preferred when the
    challenge offers it, then ``auth-int`` (hashing ``body``), then the no-qop form when
    the challenge names no qop. Raises :class:`DigestError` for an algorithm or qop this
    module does not implement.
    """
    if ha1 is None:
        if password is None:
            raise ValueError("give the password or its ha1")
        ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    elif password is not None:
        raise ValueError("give the password or its ha1, not both")
    qop: str | None
    if not challenge.qop:
        qop = None
    elif "auth" in challenge.qop:
        qop = "auth"
    elif "auth-int" in challenge.qop:
        qop = "auth-int"
    else:
        raise DigestError(f"unsupported qop {','.join(challenge.qop)!r:.40}")
    if qop is None and challenge.algorithm.endswith("-sess"):
        raise DigestError(f"{challenge.algorithm} needs a qop to carry the cnonce")
    if qop is not None:
        cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}" if qop is not None else None
    response = _response(
        algorithm=challenge.algorithm,
        ha1=ha1,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop is not None else None,
        body=body,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop is not None else None,
        opaque=challenge.opaque,
    ).encode()


# ---------------------------------------------------------------------------------------
# UAS side


class VerifyStatus(enum.Enum):
    OK = "ok"
    #: The response was right but the nonce has expired or its count was already used:
    #: challenge again with ``stale=true`` so the device retries without asking its user.
    STALE = "stale"
    BAD = "bad"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :meth:`DigestAuthenticator.verify`; ``reason`` is for logs only."""

    status: VerifyStatus
    reason: str
    username: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is VerifyStatus.OK


#: ``(username, realm, algorithm)`` → the stored hex HA1 for that user, or ``None``.
#: ``algorithm`` is ``"MD5"`` or ``"SHA-256"``: the hash the HA1 must be made with.
Ha1Lookup = Callable[[str, str, str], str | None]


class DigestAuthenticator:
    """Challenges and verifies devices for one realm, with no per-challenge state.

    A nonce is ``<unix time hex>.<random hex>.<HMAC-SHA256 of both and the realm>``: any
    process with the same ``secret`` accepts it until ``nonce_lifetime`` seconds pass.
    The only state is the nonce-count cache that stops replays, bounded at ``max_nonces``
    entries; when an entry has to be evicted, every nonce as old as it is treated as
    stale from then on, so eviction never reopens a replay.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        nonce_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
        max_nonces: int = 10_000,
    ) -> None:
        if not secret:
            raise ValueError("the nonce secret must not be empty")
        self.realm = realm
        self._secret = secret
        self._lifetime = nonce_lifetime
        self._clock = clock
        self._max_nonces = max_nonces
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._evicted_up_to = -1

    def _seal(self, payload: str) -> str:
        message = f"{self.realm}\x00{payload}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def new_nonce(self) -> str:
        payload = f"{int(self._clock()):x}.{secrets.token_hex(8)}"
        return f"{payload}.{self._seal(payload)}"

    def _nonce_time(self, nonce: str) -> int | None:
        """The issue time of a nonce this authenticator made, else ``None``."""
        payload, _, seal = nonce.rpartition(".")
        issued_text, _, _ = payload.partition(".")
        if not issued_text or not set(issued_text) <= _HEX or len(issued_text) > 12:
            return None
        if not hmac.compare_digest(seal.encode(), self._seal(payload).encode()):
            return None
        return int(issued_text, 16)

    def challenge(
        self, algorithms: Sequence[str] = ("SHA-256", "MD5"), *, stale: bool = False
    ) -> list[str]:
        """One header value per algorithm, in the order given (strongest first, RFC 8760)."""
        nonce = self.new_nonce()
        values = []
        for algorithm in algorithms:
            canonical = _canonical_algorithm(algorithm)
            if canonical not in SUPPORTED_ALGORITHMS:
                raise DigestError(f"unsupported digest algorithm {algorithm!r:.40}")
            values.append(
                DigestChallenge(
                    realm=self.realm, nonce=nonce, algorithm=canonical, qop=("auth",), stale=stale
                ).encode()
            )
        return values

    def verify(
        self,
        credentials: DigestCredentials | str,
        method: str,
        lookup_ha1: Ha1Lookup,
        *,
        request_uri: str | None = None,
        body: bytes = b"",
    ) -> VerifyResult:
        """Check credentials for a request with ``method`` (and ``request_uri`` if given).

        Only a correct response can come back ``STALE``, so a stale answer never tells a
        guesser anything; the nonce count is recorded only once a response is verified.
        """
        if isinstance(credentials, str):
            try:
                credentials = parse_credentials(credentials)
            except DigestParseError as error:
                return VerifyResult(VerifyStatus.BAD, f"malformed credentials: {error}")
        username = credentials.username
        if credentials.realm != self.realm:
            return VerifyResult(VerifyStatus.BAD, "wrong realm", username)
        if not credentials.uri:
            return VerifyResult(VerifyStatus.BAD, "empty uri", username)
        if request_uri is not None and credentials.uri != request_uri:
            return VerifyResult(VerifyStatus.BAD, "uri does not match the request", username)
        if _canonical_algorithm(credentials.algorithm) not in SUPPORTED_ALGORITHMS:
            return VerifyResult(VerifyStatus.BAD, "unsupported algorithm", username)
        if credentials.qop not in ("auth", "auth-int") or credentials.nc is None:
            # Sautikit always offers qop=auth; a client must then use it (RFC 7616 §3.4).
            return VerifyResult(VerifyStatus.BAD, "missing or unknown qop", username)
        issued = self._nonce_time(credentials.nonce)
        if issued is None:
            return VerifyResult(VerifyStatus.BAD, "nonce was not issued here", username)
        ha1 = lookup_ha1(username, self.realm, _base_algorithm(credentials.algorithm))
        if ha1 is None:
            return VerifyResult(VerifyStatus.BAD, "unknown user", username)
        expected = _response(
            algorithm=credentials.algorithm,
            ha1=ha1,
            nonce=credentials.nonce,
            method=method,
            uri=credentials.uri,
            qop=credentials.qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
            body=body,
        )
        if not hmac.compare_digest(expected.encode(), credentials.response.lower().encode()):
            return VerifyResult(VerifyStatus.BAD, "wrong response", username)
        now = self._clock()
        if abs(now - issued) > self._lifetime or issued <= self._evicted_up_to:
            return VerifyResult(VerifyStatus.STALE, "nonce expired", username)
        count = credentials.nonce_count or 0
        last = self._counts.get(credentials.nonce)
        if last is not None and count <= last[1]:
            return VerifyResult(VerifyStatus.STALE, "nonce count reused", username)
        self._remember(credentials.nonce, issued, count, now)
        return VerifyResult(VerifyStatus.OK, "ok", username)

    def _remember(self, nonce: str, issued: int, count: int, now: float) -> None:
        self._counts[nonce] = (issued, count)
        while self._counts:
            oldest_nonce, (oldest_issued, _) = next(iter(self._counts.items()))
            expired = now - oldest_issued > self._lifetime
            if not expired and len(self._counts) <= self._max_nonces:
                break
            del self._counts[oldest_nonce]
            if not expired:
                self._evicted_up_to = max(self._evicted_up_to, oldest_issued)
