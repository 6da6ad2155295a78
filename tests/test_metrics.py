"""What an operator scrapes and reads from a running node: ``/metrics`` after a real call
(SIP, calls, outbox, recordings, transcription, media), ``/readyz`` with every check, JSON
logs labelled with the call, and the Grafana dashboard in docs/ naming only metrics that
exist."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tests.serve_process import CALLEE, NUMBER, ServeProcess, calls, seed, serve_database
from tests.sipp import SCENARIOS, Sipp, requires_sipp
from tests.voice.voice_rig import document, serve_app

from sautikit.metrics import Buckets, OperationsCollector, OperationsCounters

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"


def scraped(text: str) -> dict[str, list[Sample]]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Sample], suffix: str = "", **labels: str) -> float:
    return sum(
        sample.value
        for sample in samples
        if sample.name.endswith(suffix)
        and all(sample.labels.get(key) == wanted for key, wanted in labels.items())
    )


def test_buckets_export_cumulatively() -> None:
    buckets = Buckets((0.1, 1.0))
    for seconds in (0.05, 0.5, 0.7, 3.0):
        buckets.observe(seconds)
    family = buckets.family("x_seconds", "x")
    counts = {s.labels["le"]: s.value for s in family.samples if s.name == "x_seconds_bucket"}
    assert counts == {"0.1": 1, "1.0": 3, "+Inf": 4}


def test_collector_names_each_call_state_and_failure_reason() -> None:
    counters = OperationsCounters()
    counters.outbox_attempt(0.2, 503, "the receiver answered HTTP 503")
    counters.outbox_attempt(10.0, None, "no answer within 10 s")
    collector = OperationsCollector(
        counters=counters,
        live_calls=lambda: [("inbound", "answered"), ("inbound", "answered")],
        node_id="n1",
    )
    families = {family.name: family for family in collector.collect()}
    active = {
        (s.labels["direction"], s.labels["status"]): s.value
        for s in families["sautikit_calls_active"].samples
    }
    assert active[("inbound", "answered")] == 2 and active[("outbound", "ringing")] == 0
    failures = {s.labels["reason"]: s.value for s in families["sautikit_outbox_failures"].samples}
    assert failures["http_5xx"] == 1 and failures["timeout"] == 1


@pytest.mark.sipp
@requires_sipp
async def test_a_node_reports_a_call_in_metrics_readiness_and_logs(tmp_path: Path) -> None:
    with serve_app() as app:
        answered = app.route("/answered", document({"pause": {"length": 1}}, {"hangup": {}}))
        async with (
            serve_database("sqlite", tmp_path) as (url, database),
            Sipp(scenario=SCENARIOS / "uas_answer.xml", timeout=60) as callee,
        ):
            seeded = await seed(database, voice_url=app.url("/voice"), trunk_port=callee.port)
            serve = ServeProcess(
                tmp_path / "var", url, env={"SAUTIKIT_LOG_FORMAT": "json"}, grace=1
            )
            async with serve, serve.api(seeded.headers) as api:
                placed = await api.post(
                    "/v1/calls", json={"to": CALLEE, "from": NUMBER, "action_url": answered}
                )
                assert placed.status_code == 201, placed.text
                call_id = placed.json()["id"]
                for _ in range(600):
                    if (await calls(database))[0].status == "completed":
                        break
                    await asyncio.sleep(0.05)
                ready = await api.get("/readyz")
                metrics = scraped((await api.get("/metrics")).text)
            log = serve.log

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok", "sip": "ok"}

    invites = metrics["sautikit_sip_transactions"]
    assert value(invites, role="client", method="INVITE") >= 1
    assert value(metrics["sautikit_sip_responses"], direction="received", **{"class": "2xx"}) >= 1
    assert value(metrics["sautikit_call_setup_seconds"], "_count") >= 1
    assert value(metrics["sautikit_calls_ended"], direction="outbound") >= 1
    assert value(metrics["sautikit_node_info"], node_id="serve-test") == 1
    for name in (
        "sautikit_calls_active",
        "sautikit_sip_retransmissions",
        "sautikit_sip_auth_failures",
        "sautikit_outbox_backlog",
        "sautikit_outbox_oldest_age_seconds",
        "sautikit_outbox_delivery_seconds",
        "sautikit_outbox_failures",
        "sautikit_recording_spool_depth",
        "sautikit_recording_upload_seconds",
        "sautikit_transcription_queue",
        "sautikit_transcription_real_time_factor",
        "sautikit_media_packets_received",
        "sautikit_media_packets_lost",
        "sautikit_media_jitter_milliseconds",
        "sautikit_media_clock_late_ticks",
        "sautikit_media_relayed_channels",
        "sautikit_media_mixers",
    ):
        assert name in metrics, name

    assert "\x1b" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines and all(line.get("node_id") == "serve-test" for line in lines)
    labelled = [line for line in lines if line.get("call_id") == call_id]
    assert labelled, "no log line names the call"
    assert all(line["workspace_id"] == seeded.workspace_id for line in labelled)

    # Every series the shipped dashboard queries is one this node exports.
    queried = set(re.findall(r"sautikit_[a-z0-9_]+", DASHBOARD.read_text()))
    exported = set(metrics)
    for name in queried:
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert base in exported, f"the dashboard queries {name}, which no node exports"
