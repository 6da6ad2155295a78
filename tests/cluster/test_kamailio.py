"""Kamailio (Debian ``kamailio``) in front of two nodes, configured by
``sautikit kamailio-config``: SIPp's calls through it are spread over both nodes; once a
node is killed, Kamailio's OPTIONS probing marks it down and every new call goes to the
node that is left, and succeeds. A phone registers through it round-robin (two nodes, one
nonce) and is called through it from either node (its Path)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.serve_process import NUMBER, ServeProcess, calls, free_sip_port, seed, serve_database
from tests.sipp import SCENARIOS as SIP_SCENARIOS
from tests.sipp import Sipp, free_port, requires_sipp
from tests.voice.voice_rig import document, serve_app
from typer.testing import CliRunner

from sautikit.cli.main import app
from sautikit.db.models import Number, SipCredential, SipRegistration
from sautikit.sip.digest import compute_ha1

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
requires_kamailio = pytest.mark.skipif(
    not Path(KAMAILIO).exists(), reason="Debian kamailio is not installed (make system-packages)"
)


@contextlib.asynccontextmanager
async def kamailio(config_dir: Path) -> AsyncIterator[Path]:
    """Kamailio in the foreground on the written configuration; answers its log file."""
    log = config_dir / "kamailio.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            KAMAILIO,
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-f",
            str(config_dir / "kamailio.cfg"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    try:
        for _ in range(100):
            if "Listening on" in log.read_text(errors="replace"):
                break
            assert process.returncode is None, log.read_text(errors="replace")[-3000:]
            await asyncio.sleep(0.05)
        yield log
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def place_calls(balancer: tuple[str, int], count: int) -> None:
    result = await Sipp(
        scenario=Path(__file__).parent / "scenarios" / "caller_via_proxy.xml",
        remote=balancer,
        service=NUMBER,
        calls=count,
        timeout=40,
        extra=["-r", "4"],
    ).run()
    assert result.returncode == 0, result.explain()
    assert result.successful_calls == count


async def write_config(config_dir: Path, nodes: list[ServeProcess], listen: int) -> None:
    """``sautikit kamailio-config`` for ``nodes``, as an operator runs it."""
    arguments = [f"--node=127.0.0.1:{node.sip_port}" for node in nodes]
    written = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sautikit",
        "kamailio-config",
        *arguments,
        f"--listen=127.0.0.1:{listen}",
        "--ping-interval=1",
        f"--output={config_dir}",
    )
    assert await written.wait() == 0


async def owners(database: object, seen: int) -> list[str | None]:
    found = await calls(database)  # type: ignore[arg-type]
    return [call.owner for call in found[seen:]]


@pytest.mark.sipp
@requires_sipp
@requires_kamailio
async def test_calls_through_kamailio_survive_a_killed_node(tmp_path: Path) -> None:
    with serve_app() as app:
        answer = app.route("/voice", document({"pause": {"length": 30}}))
        async with serve_database("postgresql", tmp_path) as (url, database):
            await seed(database, voice_url=answer, trunk_port=9)
            nodes = [
                ServeProcess(
                    tmp_path / name / "var",
                    url,
                    rtp_ports=ports,
                    env={"SAUTIKIT_NODE_ID": name},
                )
                for name, ports in (("a", (31600, 31699)), ("b", (31700, 31799)))
            ]
            node_b = nodes[1]
            try:
                for node in nodes:
                    await node.start()
                listen = free_sip_port()
                await write_config(tmp_path / "kamailio", nodes, listen)
                async with kamailio(tmp_path / "kamailio") as log:
                    balancer = ("127.0.0.1", listen)
                    await place_calls(balancer, 4)
                    spread = await owners(database, 0)
                    assert sorted(spread) == ["a", "a", "b", "b"], spread  # round-robin

                    await node_b.kill()
                    down = f"sautikit node down: sip:127.0.0.1:{node_b.sip_port}"
                    for _ in range(300):
                        if down in log.read_text(errors="replace"):
                            break
                        await asyncio.sleep(0.1)
                    assert down in log.read_text(errors="replace"), log.read_text()[-3000:]

                    await place_calls(balancer, 4)
                    assert await owners(database, 4) == ["a", "a", "a", "a"]
            finally:
                for node in nodes:
                    await node.kill()


def test_a_bad_node_address_is_refused_plainly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["kamailio-config", "--node", "127.0.0.1:notaport", "--output", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "not host:port" in result.output
    assert not (tmp_path / "kamailio.cfg").exists()


@pytest.mark.sipp
@requires_sipp
@requires_kamailio
async def test_a_phone_registers_and_is_called_through_kamailio(tmp_path: Path) -> None:
    """Round-robin REGISTER is let in (shared nonces); a call through Kamailio, to either
    node, reaches the phone through Kamailio again (its Path), and completes."""
    async with serve_database("postgresql", tmp_path) as (url, database):
        seeded = await seed(database, voice_url="http://127.0.0.1:9/unused", trunk_port=9)
        async with database.transaction() as session:
            number = await session.scalar(select(Number).where(Number.e164 == NUMBER))
            assert number is not None
            number.voice_url = None  # the number rings its registered phone
            session.add(
                SipCredential(
                    workspace_id=seeded.workspace_id,
                    number_id=number.id,
                    username="alice",
                    ha1_md5=compute_ha1("alice", seeded.workspace_id, "s3cret", "MD5"),
                    ha1_sha256=compute_ha1("alice", seeded.workspace_id, "s3cret", "SHA-256"),
                )
            )
        nodes = [
            ServeProcess(
                tmp_path / name / "var", url, rtp_ports=ports, env={"SAUTIKIT_NODE_ID": name}
            )
            for name, ports in (("a", (31800, 31899)), ("b", (31900, 31999)))
        ]
        try:
            for node in nodes:
                await node.start()
            listen = free_sip_port()
            await write_config(tmp_path / "kamailio", nodes, listen)
            async with kamailio(tmp_path / "kamailio"):
                balancer = ("127.0.0.1", listen)
                phone_port = free_port()
                registered = await Sipp(
                    scenario=SIP_SCENARIOS / "uac_register_auth.xml",
                    remote=balancer,
                    service="alice",
                    port=phone_port,
                ).run()
                assert registered.returncode == 0, registered.explain()
                async with database.sessions() as session:
                    (binding,) = (await session.scalars(select(SipRegistration))).all()
                assert binding.path, "Kamailio added no Path"
                for round_ in range(2):  # round-robin: one call lands on each node
                    async with Sipp(
                        scenario=Path(__file__).parent / "scenarios" / "phone_behind_proxy.xml",
                        port=phone_port,
                        timeout=30,
                    ) as phone:
                        await place_calls(balancer, 1)
                        answered = await phone.wait()
                    assert answered.returncode == 0, (round_, answered.explain())
            for _ in range(100):  # the last hang-up is still being written
                found = [call for call in await calls(database) if call.parent_call_id is None]
                if all(call.status == "completed" for call in found):
                    break
                await asyncio.sleep(0.1)
            assert [(call.owner, call.status) for call in found] in (
                [("a", "completed"), ("b", "completed")],
                [("b", "completed"), ("a", "completed")],
            ), [(call.owner, call.status, call.hangup_cause) for call in found]
        finally:
            for node in nodes:
                await node.kill()
