"""Client digest authentication: answering a 401/407 challenge (RFC 3261 §22.2).

The client half of digest, as libre's ``sip/auth.c`` and pjsip's ``sip_auth_client``: a
request that was challenged is built again with the next CSeq, the same Call-ID and an
Authorization (or Proxy-Authorization) answering the first challenge we can answer — or,
with :class:`ClientCredentials` naming algorithms (a trunk's setting), the challenge in
the best of those, and none in any other (no downgrade to MD5 when SHA-256 is required).
The server half is :mod:`sautikit.sip.server_auth`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sautikit.sip.digest import (
    DigestChallenge,
    DigestError,
    build_authorization,
    challenge_algorithms,
    parse_challenge,
)
from sautikit.sip.message import CSeq, Request, Response

__all__ = ["ClientCredentials", "answer_challenge"]


class ClientCredentials(tuple[str, str]):
    """``(username, password)`` that also say which digest algorithms they may answer
    with, best first (None: any we support, in the server's order)."""

    algorithms: tuple[str, ...] | None

    def __new__(
        cls, username: str, password: str, algorithms: Sequence[str] | None = None
    ) -> ClientCredentials:
        made = super().__new__(cls, (username, password))
        made.algorithms = challenge_algorithms(algorithms) if algorithms else None
        return made


def _usable(values: list[str], algorithms: tuple[str, ...] | None) -> list[DigestChallenge]:
    """The challenges we may answer, in the order to try them."""
    challenges = []
    for value in values:
        try:
            challenges.append(parse_challenge(value))
        except DigestError:
            continue
    if algorithms is None:
        return challenges
    rank = {algorithm: index for index, algorithm in enumerate(algorithms)}
    allowed = [c for c in challenges if c.algorithm.removesuffix("-sess") in rank]
    return sorted(allowed, key=lambda c: rank[c.algorithm.removesuffix("-sess")])


def answer_challenge(
    request: Request, response: Response, credentials: tuple[str, str], cseq: int
) -> Request | None:
    """§22.2: ``request`` again, with CSeq ``cseq``, no Via yet and credentials answering
    the first challenge of the 401/407 ``response`` we can answer; None when none fits."""
    proxy = response.status == 407
    username, password = credentials
    algorithms = credentials.algorithms if isinstance(credentials, ClientCredentials) else None
    values = response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate")
    for challenge in _usable(values, algorithms):
        try:
            authorization = build_authorization(
                challenge,
                method=request.method,
                uri=str(request.uri),
                username=username,
                password=password,
                body=request.body,
            )
        except DigestError:
            continue
        retry = Request(method=request.method, uri=request.uri, body=request.body)
        for name, header_value in request.headers:
            if name != "Via":
                retry.headers.add(name, header_value)
        retry.headers.set("CSeq", str(CSeq(cseq, request.method)))
        retry.headers.set("Proxy-Authorization" if proxy else "Authorization", authorization)
        return retry
    return None
