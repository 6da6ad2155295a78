"""The Daraja client's request details, and a push Daraja cannot take."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from sautikit import accounts
from sautikit.billing.mpesa import TopUpService
from sautikit.billing.mpesa.daraja import daraja_timestamp, stk_password
from sautikit.billing.mpesa.topups import create_stk_topup
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import TopUp, WalletEntry

PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def test_the_stk_password_is_daraja_s_documented_example() -> None:
    assert stk_password("174379", PASSKEY, "20160216165627") == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZi"
        "NzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3"
    )


def test_the_timestamp_is_nairobi_time() -> None:
    assert daraja_timestamp(datetime(2026, 12, 3, 21, 30, 5, tzinfo=UTC)) == "20261204003005"


async def test_a_push_daraja_cannot_take_fails_and_no_secret_is_logged(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        data_dir=tmp_path / "var",
        secret_key=SecretStr("test-secret"),
        daraja_consumer_key=SecretStr("ck-secret-value"),
        daraja_consumer_secret=SecretStr("cs-secret-value"),
        daraja_shortcode="174379",
        daraja_passkey=SecretStr(PASSKEY),
        daraja_base_url="http://127.0.0.1:9",  # nothing listens there
    )
    async with database.transaction() as session:
        workspace = await accounts.create_workspace(session, "acme")
        topup = await create_stk_topup(session, workspace.id, 5_000, "+254712345678")
    service = TopUpService(settings, database)
    caplog.set_level(logging.DEBUG)
    try:
        await service.send_push(topup.id)
        await service.send_push(topup.id)  # settled: nothing is sent again
    finally:
        await service.aclose()
    async with database.transaction() as session:
        stored = await session.scalar(select(TopUp).where(TopUp.id == topup.id))
        assert stored is not None and stored.status == "failed"
        assert (
            stored.failure_reason
            == "M-Pesa refused the push: Daraja could not be reached: ConnectError"
        )
        assert (await session.scalars(select(WalletEntry))).all() == []
    for secret in ("ck-secret-value", "cs-secret-value", PASSKEY):
        assert secret not in caplog.text


def test_the_environment_chooses_daraja_s_address_unless_one_is_given() -> None:
    assert Settings().effective_daraja_base_url == "https://sandbox.safaricom.co.ke"
    production = Settings(daraja_environment="production")
    assert production.effective_daraja_base_url == "https://api.safaricom.co.ke"
    own = Settings(daraja_base_url="http://127.0.0.1:8765/")
    assert own.effective_daraja_base_url == "http://127.0.0.1:8765"
    assert not Settings().daraja_enabled
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(daraja_callback_allowlist=["safaricom"])
