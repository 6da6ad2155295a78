"""The PBX: Sautikit's SIP user agent and media engine joined into call legs.

:class:`Pbx` is the media plane of one process. Call logic — the voice-action interpreter,
the test phone, the tests — receives an :class:`InboundLeg` for each INVITE and places
:class:`OutboundLeg` calls with :meth:`Pbx.dial`; each leg's ``channel`` is the media
interface (play, say, record, collect digits, bridge, conference).
"""

from sautikit.pbx.leg import CallLeg, InboundLeg, OutboundLeg
from sautikit.pbx.phone import CallReport, CallScript, Phone
from sautikit.pbx.service import Pbx

__all__ = [
    "CallLeg",
    "CallReport",
    "CallScript",
    "InboundLeg",
    "OutboundLeg",
    "Pbx",
    "Phone",
]
