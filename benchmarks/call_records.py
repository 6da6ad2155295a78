"""The database work of one bridged call, without SIP or media (issue 11, item 7's CPU).

Each simulated call does what ``benchmarks/call_setup.py``'s calls make the database do: the
inbound call's admission and ringing mark, its ``dial`` leg's admission, the leg's dialled
and ringing marks, both answers and both ends (settled and debited). ``--concurrency``
calls run at once, so the writer batches as it does under load. Prints the CPU time of
this process per call (the figure the serve path pays on its event loop for these writes).

    PYTHONPATH=src .venv/bin/python benchmarks/call_records.py --calls 400
    PYTHONPATH=src .venv/bin/python benchmarks/call_records.py --engine postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import secrets
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import asyncpg

from sautikit import accounts
from sautikit.billing.ledger import top_up
from sautikit.calls.admission import Admission, Admitted, CallAsk, Origin, ParentCall
from sautikit.calls.records import CallRecords, mark_ringing
from sautikit.config import Settings
from sautikit.db import Database, upgrade_database
from sautikit.db.models import Call, Number, Trunk
from sautikit.db.types import utcnow

NUMBER = "+254700000001"
CALLEE = "+254720000001"
POSTGRES = os.environ.get("SAUTIKIT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def seed(database: Database) -> str:
    await upgrade_database(database)
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "call-records benchmark")
        workspace.max_concurrent_calls = 1_000_000
        workspace.max_calls_per_second = 1_000_000
        session.add(
            Number(
                e164=NUMBER,
                monthly_price_minor=0,
                status="active",
                workspace_id=workspace.id,
                voice_url="http://127.0.0.1:9/voice",
                claimed_at=utcnow(),
                paid_until=utcnow() + timedelta(days=30),
            )
        )
        session.add(
            Trunk(name="carrier", host="127.0.0.1", port=9, prefixes=["+254"], inbound_addresses=[])
        )
        await session.flush()
        await top_up(session, workspace.id, 10**12, idempotency_key="benchmark")
        return workspace.id


async def one_call(database: Database, admission: Admission, records: CallRecords, n: int) -> None:
    caller = f"+254711{n:06d}"
    ask = CallAsk(Origin.INBOUND, to=NUMBER, caller=caller, owner="bench", sip_call_id=f"c{n}")

    async def admit_inbound(session):  # type: ignore[no-untyped-def]
        admitted = await admission.admit(session, ask)
        await mark_ringing(session, admitted.call)
        return admitted

    parent: Admitted = await database.write(admit_inbound, what="admit inbound")
    call = parent.call

    async def admit_child(session):  # type: ignore[no-untyped-def]
        record = await session.get(Call, call.id)
        child_ask = CallAsk(
            Origin.CHILD,
            to=CALLEE,
            caller=caller,
            workspace_id=call.workspace_id,
            parent=ParentCall(call.id, caller, NUMBER, record.events_url if record else None),
            owner="bench",
        )
        return await admission.admit(session, child_ask)

    child: Admitted = await database.write(admit_child, what="admit child")
    dialog = {"call_id": f"x{n}", "local_tag": "a", "remote_tag": "b", "cseq": 1}
    records.dialled(child.call.id, f"x{n}", dialog)
    records.ringing(child.call.id, dialog)
    answered = utcnow()
    await records.answered(child.call.id, dialog, at=answered)
    await records.answered(call.id, at=answered)
    ended = answered + timedelta(seconds=2)
    await records.ended(child.call.id, "normal_clearing", at=ended)
    await records.ended(call.id, "normal_clearing", at=ended)


async def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="call-records-"))
    admin = None
    if args.engine == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'sautikit.db'}"
    else:
        name = f"bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(POSTGRES)
        await admin.execute(f"CREATE DATABASE {name}")
        url = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{url}/{name}"
    settings = Settings(data_dir=folder, database_url=url)
    database = Database(url)
    try:
        await seed(database)
        admission = Admission(settings)
        records = CallRecords(database, settings)
        for n in range(20):  # warm the caches and the compiled statements
            await one_call(database, admission, records, n)
        profile = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        done = 20
        while done < 20 + args.calls:
            group = range(done, min(done + args.concurrency, 20 + args.calls))
            await asyncio.gather(*(one_call(database, admission, records, n) for n in group))
            done = group.stop
        await database.wait_written()
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"{args.engine}: {args.calls} calls, {cpu * 1000 / args.calls:.2f} ms CPU per call, "
            f"{wall * 1000 / args.calls:.2f} ms wall per call, load {os.getloadavg()[0]:.2f}"
        )
        if profile:
            stats = pstats.Stats(profile)
            print(f"{stats.total_calls / args.calls:.0f} Python function calls per call")
            stats.sort_stats(args.profile).print_stats(40)
    finally:
        await database.close()
        if admin is not None:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--profile", help="cProfile sort key (tottime, cumtime)")
    args = parser.parse_args()
    from sautikit.runtime import run as run_loop

    run_loop(run(args))


if __name__ == "__main__":
    main()
