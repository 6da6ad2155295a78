"""The REGISTER binding store (RFC 3261 §10.3) driven by an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sautikit.sip.registrar import ContactRequest, Registrar, Source

AOR = "sip:1001@ws_9f2c.sautikit"
DESK = "sip:1001@192.168.1.20:5060"
MOBILE = "sip:1001@10.8.0.7:5062;transport=tcp"
NAT = Source("203.0.113.9", 40123, "udp")


def test_register_then_lookup_returns_the_binding_with_its_source() -> None:
    registrar = Registrar()
    result = registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=1, now=1000.0, source=NAT)
    assert (result.status_code, result.reason, result.ok) == (200, "OK", True)
    [binding] = registrar.lookup(AOR, now=1000.0)
    assert binding.contact == DESK
    assert binding.source == NAT
    assert binding.expires_in(1000.0) == 600
    assert binding.q == 1.0
    assert result.bindings == (binding,)


def test_binding_drops_out_when_it_expires() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 60)], call_id="c1", cseq=1, now=0.0)
    assert registrar.lookup(AOR, now=59.5)[0].expires_in(59.5) == 1
    assert registrar.lookup(AOR, now=60.0) == []


def test_expire_removes_and_reports_only_expired_bindings() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 60)], call_id="c1", cseq=1, now=0.0)
    registrar.register(AOR, [(MOBILE, 3600)], call_id="c2", cseq=1, now=0.0)
    registrar.register("sip:other@x", [("sip:o@1.2.3.4", 60)], call_id="c3", cseq=1, now=0.0)
    dropped = registrar.expire(now=100.0)
    assert sorted(b.contact for b in dropped) == sorted([DESK, "sip:o@1.2.3.4"])
    assert [b.contact for b in registrar.lookup(AOR, now=100.0)] == [MOBILE]
    assert registrar.expire(now=100.0) == []


def test_expires_header_and_default_apply_when_the_contact_has_none() -> None:
    registrar = Registrar(default_expires=1800)
    registrar.register(AOR, [(DESK, None)], call_id="c1", cseq=1, now=0.0, expires=120)
    registrar.register(AOR, [ContactRequest(MOBILE)], call_id="c2", cseq=1, now=0.0)
    remaining = {b.contact: b.expires_in(0.0) for b in registrar.lookup(AOR, now=0.0)}
    assert remaining == {DESK: 120, MOBILE: 1800}


def test_contact_expires_beats_the_expires_header() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 300)], call_id="c1", cseq=1, now=0.0, expires=900)
    assert registrar.lookup(AOR, now=0.0)[0].expires_in(0.0) == 300


def test_too_short_is_423_with_min_expires_and_changes_nothing() -> None:
    registrar = Registrar(min_expires=60)
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=1, now=0.0)
    result = registrar.register(AOR, [(MOBILE, 600), (DESK, 30)], call_id="c1", cseq=2, now=0.0)
    assert (result.status_code, result.reason, result.min_expires) == (
        423,
        "Interval Too Brief",
        60,
    )
    assert [b.contact for b in registrar.lookup(AOR, now=0.0)] == [DESK]


def test_too_long_is_shortened_to_the_maximum() -> None:
    registrar = Registrar(max_expires=3600)
    result = registrar.register(AOR, [(DESK, 2**32)], call_id="c1", cseq=1, now=0.0)
    assert result.bindings[0].expires_in(0.0) == 3600


def test_expires_zero_removes_one_binding() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600), (MOBILE, 600)], call_id="c1", cseq=1, now=0.0)
    result = registrar.register(AOR, [(DESK, 0)], call_id="c1", cseq=2, now=1.0)
    assert [b.contact for b in result.bindings] == [MOBILE]
    assert [b.contact for b in registrar.lookup(AOR, now=1.0)] == [MOBILE]


def test_wildcard_with_expires_zero_removes_everything() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=1, now=0.0)
    registrar.register(AOR, [(MOBILE, 600)], call_id="c2", cseq=7, now=0.0)
    result = registrar.register(AOR, [("*", None)], call_id="c1", cseq=2, now=1.0, expires=0)
    assert result.ok and result.bindings == ()
    assert registrar.lookup(AOR, now=1.0) == []


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        ([("*", None)], None),
        ([("*", None)], 3600),
        ([("*", None), (DESK, 0)], 0),
        ([(DESK, 0), ("*", None)], 0),
    ],
)
def test_wildcard_in_any_other_form_is_400(contacts, expires) -> None:
    registrar = Registrar()
    registrar.register(AOR, [(MOBILE, 600)], call_id="c1", cseq=1, now=0.0)
    result = registrar.register(AOR, contacts, call_id="c1", cseq=2, now=0.0, expires=expires)
    assert result.status_code == 400
    assert len(registrar.lookup(AOR, now=0.0)) == 1


def test_wildcard_with_an_old_cseq_on_the_same_call_id_fails() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=5, now=0.0)
    result = registrar.register(AOR, [("*", 0)], call_id="c1", cseq=5, now=0.0)
    assert result.status_code == 400
    assert len(registrar.lookup(AOR, now=0.0)) == 1


def test_cseq_must_rise_within_a_call_id_but_not_across() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=10, now=0.0, source=NAT)
    late = registrar.register(AOR, [(DESK, 0)], call_id="c1", cseq=9, now=1.0)
    assert late.status_code == 400
    assert len(registrar.lookup(AOR, now=1.0)) == 1
    moved = Source("198.51.100.4", 5060)
    rebooted = registrar.register(AOR, [(DESK, 900)], call_id="c2", cseq=1, now=2.0, source=moved)
    assert rebooted.ok
    [binding] = registrar.lookup(AOR, now=2.0)
    assert (binding.call_id, binding.cseq, binding.source) == ("c2", 1, moved)
    assert binding.expires_in(2.0) == 900


def test_refresh_with_higher_cseq_extends_the_binding() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=1, now=0.0)
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=2, now=500.0)
    assert registrar.lookup(AOR, now=900.0)[0].expires_in(900.0) == 200


def test_an_update_is_all_or_nothing() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=5, now=0.0)
    result = registrar.register(AOR, [(MOBILE, 600), (DESK, 600)], call_id="c1", cseq=4, now=0.0)
    assert result.status_code == 400
    assert [b.contact for b in registrar.lookup(AOR, now=0.0)] == [DESK]


def test_query_without_contacts_lists_bindings() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=1, now=0.0)
    result = registrar.register(AOR, [], call_id="c9", cseq=1, now=100.0)
    assert result.ok
    assert [(b.contact, b.expires_in(100.0)) for b in result.bindings] == [(DESK, 500)]


def test_lookup_prefers_higher_q_then_the_newest() -> None:
    registrar = Registrar()
    registrar.register(AOR, [ContactRequest(DESK, 600, 0.5)], call_id="c1", cseq=1, now=0.0)
    registrar.register(AOR, [ContactRequest(MOBILE, 600, 0.9)], call_id="c2", cseq=1, now=1.0)
    registrar.register(AOR, [("sip:1001@192.0.2.3", 600)], call_id="c3", cseq=1, now=2.0)
    registrar.register(AOR, [("sip:1001@192.0.2.4", 600)], call_id="c4", cseq=1, now=3.0)
    assert [b.contact for b in registrar.lookup(AOR, now=3.0)] == [
        "sip:1001@192.0.2.4",
        "sip:1001@192.0.2.3",
        MOBILE,
        DESK,
    ]


@pytest.mark.parametrize(
    "contact", [ContactRequest(DESK, -1), ContactRequest(DESK, 600, 1.5)], ids=["expires", "q"]
)
def test_out_of_range_values_are_400(contact: ContactRequest) -> None:
    result = Registrar().register(AOR, [contact], call_id="c1", cseq=1, now=0.0)
    assert result.status_code == 400


def test_contacts_per_aor_are_capped() -> None:
    registrar = Registrar(max_contacts_per_aor=2)
    registrar.register(AOR, [(DESK, 600), (MOBILE, 600)], call_id="c1", cseq=1, now=0.0)
    result = registrar.register(AOR, [("sip:1001@192.0.2.3", 600)], call_id="c2", cseq=1, now=0.0)
    assert result.status_code == 403
    assert len(registrar.lookup(AOR, now=0.0)) == 2
    after_expiry = registrar.register(
        AOR, [("sip:1001@192.0.2.3", 600)], call_id="c2", cseq=2, now=601.0
    )
    assert after_expiry.ok


def test_aors_are_kept_apart() -> None:
    registrar = Registrar()
    registrar.register(AOR, [(DESK, 600)], call_id="c1", cseq=1, now=0.0)
    assert registrar.lookup("sip:1002@ws_9f2c.sautikit", now=0.0) == []


def test_settings_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="min_expires"):
        Registrar(min_expires=600, default_expires=60)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([DESK, MOBILE, "*"]),
            st.one_of(st.none(), st.integers(-5, 5000)),
            st.sampled_from(["c1", "c2"]),
            st.integers(0, 20),
            st.floats(0, 10_000, allow_nan=False),
        ),
        max_size=30,
    )
)
def test_lookup_never_returns_expired_or_excess_bindings(steps) -> None:
    registrar = Registrar(max_contacts_per_aor=2)
    now = 0.0
    for contact, expires, call_id, cseq, step in steps:
        now += step
        registrar.register(AOR, [(contact, expires)], call_id=call_id, cseq=cseq, now=now)
        bindings = registrar.lookup(AOR, now)
        assert len(bindings) <= 2
        assert all(0 < b.expires_at - now <= registrar.max_expires + 1e-6 for b in bindings)
