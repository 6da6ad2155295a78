"""How a call leg's audio fared: packets, loss, jitter, and a MOS from the E-model.

The figures are those RTCP carries (RFC 3550 §6.4, App. A.3 and A.8), measured by us on
what the leg sends: the packets that arrived, the packets the sequence numbers say were
lost, the interarrival jitter. The round trip comes from the far end's report blocks
about our stream (LSR/DLSR). :func:`mos_estimate` turns them into a mean opinion score
with the ITU-T G.107 E-model in its usual simplified form (Cole and Rosenbluth, 2001):

    R = 93.2 − Id − Ie,eff
    Id = 0.024·d + 0.11·(d − 177.3)·[d > 177.3]          d: mouth-to-ear delay, ms
    Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl + Bpl)          Ppl: loss, %
    MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R)

with G.711's Ie = 0 and Bpl = 25.1 (G.113 Appendix I, with packet-loss concealment) and
the delay taken as half the round trip plus a jitter buffer of twice the jitter plus one
packet. It is an estimate for comparing calls and spotting bad routes, not a listening
test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["LegQuality", "mos_estimate", "r_factor"]

_G711_IE: Final = 0.0
_G711_BPL: Final = 25.1


def r_factor(loss_percent: float, delay_ms: float) -> float:
    """The E-model's transmission rating R for G.711 (0 to 93.2)."""
    delay_impairment = 0.024 * delay_ms
    if delay_ms > 177.3:
        delay_impairment += 0.11 * (delay_ms - 177.3)
    loss = max(0.0, loss_percent)
    equipment_impairment = _G711_IE + (95 - _G711_IE) * loss / (loss + _G711_BPL)
    return max(0.0, 93.2 - delay_impairment - equipment_impairment)


def mos_estimate(
    loss_percent: float, jitter_ms: float, round_trip_ms: float | None, ptime_ms: int = 20
) -> float:
    """A MOS (1.0 to 4.5) from loss, jitter and the round trip (None: unknown, taken as 0)."""
    delay = (round_trip_ms or 0.0) / 2 + 2 * jitter_ms + ptime_ms
    r = r_factor(loss_percent, delay)
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


@dataclass(frozen=True, slots=True)
class LegQuality:
    """What one leg's audio to us looked like, over the whole call."""

    packets: int
    """RTP packets received from the leg."""
    lost: int
    """Packets its sequence numbers say never arrived (RFC 3550 cumulative loss)."""
    jitter_ms: float
    """Interarrival jitter, averaged over the call's RTCP intervals."""
    mos_estimate: float
    """E-model MOS from the loss, the jitter and the round trip."""
    round_trip_ms: float | None = None
    """From the far end's receiver reports, when it sent any."""
    one_way_audio: bool = False
    """The leg sent nothing for the configured time while we expected audio from it."""

    @property
    def loss_percent(self) -> float:
        expected = self.packets + max(0, self.lost)
        return 100.0 * max(0, self.lost) / expected if expected else 0.0

    def as_record(self) -> dict[str, object]:
        """The call record's ``quality`` field: ``{packets, lost, jitter_ms, mos_estimate}``
        plus ``round_trip_ms`` when known and ``one_way_audio``."""
        record: dict[str, object] = {
            "packets": self.packets,
            "lost": self.lost,
            "jitter_ms": round(self.jitter_ms, 2),
            "mos_estimate": round(self.mos_estimate, 2),
            "one_way_audio": self.one_way_audio,
        }
        if self.round_trip_ms is not None:
            record["round_trip_ms"] = round(self.round_trip_ms, 1)
        return record
