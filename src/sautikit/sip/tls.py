"""TLS contexts for SIP over TLS (RFC 3261 §26.2, RFC 5630).

The transport layer (:mod:`sautikit.sip.transport`) listens with :func:`server_context`
(the operator's certificate chain and key) and connects out — to trunks that require TLS,
or back to a phone whose connection closed — with :func:`client_context`, which verifies
the peer's certificate and name against the operator's CA file or the system's store.

Phones rarely hold certificates of their own, so the server asks for none (no mutual TLS).
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["DEFAULT_SIPS_PORT", "TlsConfigError", "client_context", "server_context"]

#: RFC 3261 §19.1.2: the default port of ``sips:`` URIs and of TLS.
DEFAULT_SIPS_PORT = 5061


class TlsConfigError(ValueError):
    """A certificate, key or CA file cannot be used; the message names the file."""


def server_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting ``cert_file`` (PEM chain) with ``key_file``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as error:
        raise TlsConfigError(
            f"cannot load the SIP TLS certificate {cert_file} with key {key_file}: {error}"
        ) from error
    return context


def client_context(ca_file: str | Path | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """A TLS 1.2+ client context that checks the peer's certificate and host name.

    ``ca_file`` (PEM) replaces the system's trust store, e.g. a carrier's private CA.
    ``verify=False`` accepts any certificate: only for reaching a phone back whose own
    certificate nobody issued (the connection the phone opened is preferred anyway).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as error:
            raise TlsConfigError(f"cannot load the SIP TLS CA file {ca_file}: {error}") from error
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
