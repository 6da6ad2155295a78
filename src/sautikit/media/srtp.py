"""SRTP for one RTP session with SDES keys (RFC 3711, RFC 4568), over libsrtp.

:class:`SrtpContext` holds the two libsrtp sessions of a leg: the outbound one keyed by the
master key and salt Sautikit put in its own ``a=crypto`` line, the inbound one keyed by the
peer's. :meth:`protect_rtp` / :meth:`protect_rtcp` turn our packets into SRTP / SRTCP, and
:meth:`unprotect_rtp` / :meth:`unprotect_rtcp` check and decrypt the peer's, raising
:class:`SrtpError` for anything that fails authentication or replays (the caller drops and
counts it, as it does garbage).

The keys and the suite come from the SDP (:class:`sautikit.sip.sdp.SrtpKeys`); this module
knows nothing of SDP itself.
"""

from __future__ import annotations

import pylibsrtp

__all__ = ["SUPPORTED_SUITES", "SrtpContext", "SrtpError"]

#: RFC 4568 §6.2 suite names → libsrtp profiles. Both use a 16-byte key and 14-byte salt.
_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
SUPPORTED_SUITES = tuple(_PROFILES)
#: The master key and salt of those suites, concatenated (RFC 4568 §6.1 ``inline:``).
MASTER_KEY_LENGTH = 30


class SrtpError(ValueError):
    """A packet failed SRTP authentication, replayed, or could not be protected."""


def _session(suite: str, key: bytes, ssrc_type: int) -> pylibsrtp.Session:
    profile = _PROFILES.get(suite)
    if profile is None:
        raise ValueError(f"unsupported SRTP suite {suite!r}")
    if len(key) != MASTER_KEY_LENGTH:
        raise ValueError(f"an {suite} master key and salt are {MASTER_KEY_LENGTH} bytes")
    return pylibsrtp.Session(
        policy=pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    )


class SrtpContext:
    """Protect what we send with ``local_key``, unprotect what arrives with ``remote_key``.

    Each direction may use a different suite (RFC 4568 allows the answerer's own choice
    only from the offered ones, so they normally agree).
    """

    def __init__(
        self, suite: str, local_key: bytes, remote_key: bytes, remote_suite: str | None = None
    ) -> None:
        self.suite = suite
        self._outbound = _session(suite, local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._inbound = _session(
            remote_suite or suite, remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND
        )
        self.keys = (local_key, remote_key)

    def protect_rtp(self, packet: bytes) -> bytes:
        try:
            return bytes(self._outbound.protect(packet))
        except pylibsrtp.Error as error:
            raise SrtpError(f"cannot protect an RTP packet: {error}") from error

    def unprotect_rtp(self, packet: bytes) -> bytes:
        try:
            return bytes(self._inbound.unprotect(packet))
        except pylibsrtp.Error as error:
            raise SrtpError(f"SRTP packet refused: {error}") from error

    def protect_rtcp(self, packet: bytes) -> bytes:
        try:
            return bytes(self._outbound.protect_rtcp(packet))
        except pylibsrtp.Error as error:
            raise SrtpError(f"cannot protect an RTCP packet: {error}") from error

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        try:
            return bytes(self._inbound.unprotect_rtcp(packet))
        except pylibsrtp.Error as error:
            raise SrtpError(f"SRTCP packet refused: {error}") from error
