"""Client digest authentication: answering a 401/407 challenge (RFC 3261 §22.2).

The client half of digest, as libre's ``sip/auth.c`` and pjsip's ``sip_auth_client``: a
request that was challenged is built again with the next CSeq, the same Call-ID and an
Authorization (or Proxy-Authorization) answering the first challenge we can answer. The
server half is :mod:`sautikit.sip.server_auth`.
"""

from __future__ import annotations

from sautikit.sip.digest import DigestError, build_authorization, parse_challenge
from sautikit.sip.message import CSeq, Request, Response

__all__ = ["answer_challenge"]


def answer_challenge(
    request: Request, response: Response, credentials: tuple[str, str], cseq: int
) -> Request | None:
    """§22.2: ``request`` again, with CSeq ``cseq``, no Via yet and credentials answering
    the first challenge of the 401/407 ``response`` we can answer; None when none fits."""
    proxy = response.status == 407
    username, password = credentials
    for value in response.headers.get_all("Proxy-Authenticate" if proxy else "WWW-Authenticate"):
        try:
            authorization = build_authorization(
                parse_challenge(value),
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
