"""AuthThrottle: guessers are refused after the threshold, the real phone is not."""

from __future__ import annotations

from sautikit.sip.auth_throttle import AuthThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(
    max_failures_per_source=3, max_failures_per_username=5, window=60, block_seconds=600
)


def test_an_address_is_refused_after_its_failures_and_let_in_after_the_cool_down() -> None:
    now = [0.0]
    throttle = AuthThrottle(POLICY, lambda: now[0])
    assert throttle.record_failure("198.51.100.7", "alice") == []
    assert throttle.record_failure("198.51.100.7", "bob") == []
    assert throttle.record_failure("198.51.100.7", "carol") == ["source 198.51.100.7"]
    assert throttle.source_blocked("198.51.100.7")
    assert not throttle.source_blocked("198.51.100.8")
    now[0] = 601.0
    assert not throttle.source_blocked("198.51.100.7")


def test_failures_outside_the_window_do_not_add_up() -> None:
    now = [0.0]
    throttle = AuthThrottle(POLICY, lambda: now[0])
    for _ in range(10):
        throttle.record_failure("198.51.100.7", "alice")
        now[0] += 61
    assert not throttle.source_blocked("198.51.100.7")


def test_a_username_guessed_from_many_addresses_refuses_only_the_guessers() -> None:
    now = [0.0]
    throttle = AuthThrottle(POLICY, lambda: now[0])
    blocked: list[str] = []
    for n in range(5):
        blocked += throttle.record_failure(f"203.0.113.{n}", "alice")
    assert blocked == ["username 'alice' for the addresses guessing it"]
    assert all(throttle.username_blocked("alice", f"203.0.113.{n}") for n in range(5))
    assert not throttle.username_blocked("alice", "192.0.2.50")  # the phone never failed
    assert not throttle.username_blocked("bob", "203.0.113.1")
    now[0] = 700.0
    assert not throttle.username_blocked("alice", "203.0.113.1")


def test_memory_is_bounded() -> None:
    throttle = AuthThrottle(ThrottlePolicy(max_tracked=100))
    for n in range(1000):
        throttle.record_failure(f"10.0.{n // 256}.{n % 256}", f"user{n}")
    assert len(throttle._sources) <= 100 and len(throttle._usernames) <= 100
    assert throttle.failures_total == 1000
