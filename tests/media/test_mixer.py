"""Mixing as a conference participant hears it: everyone but themselves, never wrapped round."""

import numpy as np

from sautikit.media.mixer import interleave_stereo, mix, mix_minus


def frames_of(*levels: int) -> np.ndarray:
    return np.array([np.full(160, level) for level in levels], dtype=np.int16)


def test_each_participant_hears_everyone_else() -> None:
    heard = mix_minus(frames_of(100, 20, 3))
    assert heard.shape == (3, 160)
    assert heard.dtype == np.int16
    assert heard[:, 0].tolist() == [23, 103, 120]


def test_a_muted_participant_is_heard_by_nobody_but_still_hears() -> None:
    heard = mix_minus(frames_of(100, 20, 3), muted=np.array([True, False, False]))
    assert heard[:, 0].tolist() == [23, 3, 20]


def test_loud_talkers_clip_instead_of_wrapping() -> None:
    # 90000 in int16 would wrap to a negative value; it must saturate instead.
    loud = mix_minus(frames_of(30000, 30000, 30000, 0))
    assert loud[3, 0] == 32767
    quiet = mix_minus(frames_of(-30000, -30000, 0))
    assert quiet[2, 0] == -32768


def test_two_party_mix_minus_is_a_bridge() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(-8000, 8000, size=(2, 160), dtype=np.int16)
    heard = mix_minus(np.stack([a, b]))
    assert np.array_equal(heard[0], b)
    assert np.array_equal(heard[1], a)


def test_a_lone_participant_hears_silence() -> None:
    assert not mix_minus(frames_of(12345)).any()


def test_mix_is_the_whole_room() -> None:
    room = mix(frames_of(100, 20, 3), muted=np.array([False, True, False]))
    assert room.shape == (160,)
    assert room[0] == 103
    assert mix(frames_of(30000, 30000))[0] == 32767


def test_interleave_stereo_puts_legs_left_and_right() -> None:
    left = np.array([1, 2, 3], dtype=np.int16)
    right = np.array([-1, -2], dtype=np.int16)
    stereo = interleave_stereo(left, right)
    assert stereo.dtype == np.int16
    assert stereo.tolist() == [[1, -1], [2, -2], [3, 0]]
    assert np.frombuffer(stereo.tobytes(), dtype=np.int16).tolist() == [1, -1, 2, -2, 3, 0]
