"""The jitter buffer as the media clock sees it: frames out in order, losses concealed."""

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sautikit.media.jitter import CONCEAL_FRAMES, JitterBuffer, conceal

SSRC = 0x1234


def payload(sequence: int) -> bytes:
    return sequence.to_bytes(2, "big")


def push_all(buffer: JitterBuffer, sequences: list[int], ssrc: int = SSRC) -> None:
    for sequence in sequences:
        buffer.push(sequence, ssrc, payload(sequence))


def pop_sequences(buffer: JitterBuffer, count: int) -> list[int | None]:
    frames = [buffer.pop() for _ in range(count)]
    return [None if frame is None else int.from_bytes(frame, "big") for frame in frames]


def test_waits_for_the_target_depth_before_playing() -> None:
    buffer = JitterBuffer(min_depth=3)
    push_all(buffer, [1, 2])
    assert buffer.pop() is None
    push_all(buffer, [3])
    assert pop_sequences(buffer, 3) == [1, 2, 3]


def test_reordered_packets_come_out_in_order() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [3, 1, 2, 5, 4])
    assert pop_sequences(buffer, 5) == [1, 2, 3, 4, 5]
    assert buffer.stats.lost == 0


def test_order_survives_the_16_bit_sequence_wrap() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [65534, 0, 65535, 1])
    assert pop_sequences(buffer, 4) == [65534, 65535, 0, 1]


def test_a_missing_packet_is_a_concealment_marker_and_counted_lost() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [1, 2, 4, 5])
    assert pop_sequences(buffer, 4) == [1, 2, None, 4]
    assert buffer.stats.lost == 1


def test_a_late_packet_is_dropped_and_deepens_the_buffer() -> None:
    buffer = JitterBuffer(min_depth=2)
    push_all(buffer, [1, 2, 3, 5, 6])
    assert pop_sequences(buffer, 4) == [1, 2, 3, None]
    assert buffer.push(4, SSRC, payload(4)) is False
    assert buffer.stats.late == 1
    assert buffer.target_depth == 3
    # Playout holds one tick to build the extra frame of depth, then carries on.
    push_all(buffer, [7])
    assert pop_sequences(buffer, 3) == [None, 5, 6]


def test_target_depth_shrinks_back_after_a_calm_spell() -> None:
    buffer = JitterBuffer(min_depth=2)
    push_all(buffer, [1, 2, 3, 5])
    pop_sequences(buffer, 4)
    buffer.push(4, SSRC, payload(4))
    assert buffer.target_depth == 3
    for sequence in range(6, 300):
        buffer.push(sequence, SSRC, payload(sequence))
        buffer.pop()
    assert buffer.target_depth == 2


def test_duplicates_are_dropped_before_and_after_playout() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [1, 1, 2])
    assert pop_sequences(buffer, 1) == [1]
    assert buffer.push(1, SSRC, payload(1)) is False
    assert buffer.stats.duplicate == 2
    assert buffer.stats.late == 0


def test_silence_suppression_is_an_underrun_not_a_loss() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [1, 2])
    assert pop_sequences(buffer, 4) == [1, 2, None, None]
    # The talkspurt resumes with the next sequence number; it plays after a refill.
    push_all(buffer, [3])
    assert buffer.pop() is None
    push_all(buffer, [4])
    assert pop_sequences(buffer, 2) == [3, 4]
    assert buffer.stats.lost == 0
    assert buffer.stats.underruns == 1


def test_a_burst_after_a_stall_is_trimmed_to_win_latency_back() -> None:
    buffer = JitterBuffer(min_depth=2)
    push_all(buffer, list(range(1, 21)))
    assert pop_sequences(buffer, 4) == [15, 16, 17, 18]
    assert buffer.stats.discarded == 14


def test_an_ssrc_change_resynchronises() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [10, 11, 12])
    assert pop_sequences(buffer, 1) == [10]
    push_all(buffer, [40000, 40001], ssrc=0x9999)
    assert buffer.stats.resyncs == 1
    assert buffer.ssrc == 0x9999
    assert pop_sequences(buffer, 2) == [40000, 40001]


def test_a_sequence_reset_resynchronises_once_confirmed() -> None:
    buffer = JitterBuffer()
    push_all(buffer, list(range(1000, 1006)))
    assert pop_sequences(buffer, 2) == [1000, 1001]
    # Same SSRC, numbering starts again (a replayed capture, a re-anchored B2BUA).
    push_all(buffer, [5, 6, 7, 8])
    assert buffer.stats.resyncs == 1
    assert pop_sequences(buffer, 3) == [6, 7, 8]


def test_one_stray_sequence_number_does_not_derail_the_stream() -> None:
    buffer = JitterBuffer()
    push_all(buffer, [1, 2, 3, 40000, 4, 5])
    assert pop_sequences(buffer, 5) == [1, 2, 3, 4, 5]
    assert buffer.stats.discarded == 1
    assert buffer.stats.resyncs == 0


def test_jittery_arrival_plays_everything_in_order() -> None:
    rng = random.Random(3550)
    buffer = JitterBuffer(min_depth=2, max_depth=8)
    # Packet i is sent at 20 i ms and arrives up to 50 ms later; the clock pops every 20 ms.
    arrivals = sorted((20 * i + rng.uniform(0, 50), i) for i in range(500))
    played: list[int] = []
    cursor = 0
    for tick in range(600):
        while cursor < len(arrivals) and arrivals[cursor][0] <= tick * 20:
            buffer.push(arrivals[cursor][1], SSRC, payload(arrivals[cursor][1]))
            cursor += 1
        frame = buffer.pop()
        if frame is not None:
            played.append(int.from_bytes(frame, "big"))
    assert played == sorted(played)
    assert len(played) == len(set(played))
    # Everything not played was lost to lateness while the depth adapted.
    assert 500 - len(played) == buffer.stats.late
    assert len(played) > 480


def test_rejects_inconsistent_depths() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(min_depth=4, max_depth=2)


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.integers(0, 0xFFFF), st.sampled_from([1, 2])),
            st.tuples(st.just("pop"), st.just(0), st.just(0)),
        ),
        max_size=120,
    )
)
def test_arbitrary_arrivals_never_break_playout_order(ops: list[tuple[str, int, int]]) -> None:
    buffer = JitterBuffer()
    last: tuple[int, int] | None = None  # (resyncs, extended order) of the last frame played
    for op, sequence, ssrc in ops:
        if op == "push":
            buffer.push(sequence, ssrc, payload(sequence))
            continue
        frame = buffer.pop()
        if frame is None:
            continue
        assert len(buffer) <= buffer.target_depth + 4
        # Within one numbering, frames play in increasing (wrapping) sequence order.
        sequence = int.from_bytes(frame, "big")
        epoch = buffer.stats.resyncs
        if last is not None and last[0] == epoch:
            assert 0 < (sequence - last[1]) % 0x10000 < 0x8000
        last = (epoch, sequence)


def test_conceal_fades_the_last_frame_then_falls_silent() -> None:
    frame = np.full(160, -12000, dtype=np.int16)
    assert np.array_equal(conceal(frame, 1), np.full(160, -6000, dtype=np.int16))
    assert np.array_equal(conceal(frame, 2), np.full(160, -3000, dtype=np.int16))
    assert conceal(frame, 2).dtype == np.int16
    assert not conceal(frame, CONCEAL_FRAMES + 1).any()
    silence = conceal(None, 1)
    assert silence.shape == (160,)
    assert silence.dtype == np.int16
    assert not silence.any()
