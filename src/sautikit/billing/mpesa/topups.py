"""M-Pesa top-ups (issue 18): STK pushes, their callbacks and queries, Paybill payments.

A top-up's states form one small machine::

    pending ──callback or query: paid──▶ confirmed
       │                                     ▲
       └──ResultCode ≠ 0, refused push──▶ failed ──a later callback with a receipt──┘

``confirmed`` posts exactly one ledger credit (idempotency key ``topup:<id>``), so a
callback and a query that settle the same push at once still credit it once; receipts
(``MpesaReceiptNumber``, a Paybill ``TransID``) are unique across top-ups, so a replayed
receipt credits nothing. Money M-Pesa reports that matches no push and no workspace is kept
as an ``MpesaPayment`` for the operator, never dropped.

Safaricom does not sign its callbacks. What can be checked is: the callback URL carries a
token derived from the deployment's secret, an optional source-address allow-list, the
``CheckoutRequestID`` must be one this deployment started, and the amount and phone must
be the push's. No credit is posted without a confirmed push or a Paybill confirmation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sautikit.billing import ledger
from sautikit.billing.mpesa.daraja import DarajaClient, DarajaError
from sautikit.config import Settings
from sautikit.db import Database
from sautikit.db.models import MpesaPayment, TopUp, Workspace
from sautikit.db.types import utcnow

__all__ = [
    "MAX_TOPUP_MINOR",
    "MIN_TOPUP_MINOR",
    "CallbackAnswer",
    "InvalidTopUp",
    "TopUpService",
    "account_reference",
    "apply_c2b_confirmation",
    "apply_stk_callback",
    "assign_payment",
    "callback_token",
    "callback_urls",
    "create_stk_topup",
    "source_allowed",
    "validate_c2b",
]

log = logging.getLogger(__name__)

# M-Pesa moves whole shillings, from KES 1 to KES 250,000 a transaction.
MIN_TOPUP_MINOR = 100
MAX_TOPUP_MINOR = 250_000 * 100
_KENYAN_MOBILE = re.compile(r"^\+254[17]\d{8}$")
_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: typed on a phone
_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"confirmed", "failed"}),
    "failed": frozenset({"confirmed"}),
    "confirmed": frozenset(),
}
# Pushes asked about this many times with no definite answer are given up as failed.
_MAX_QUERY_ATTEMPTS = 10
# A push still unsent this long after it was asked for (a crash in between) is not sent.
_UNSENT_GIVE_UP = timedelta(minutes=5)


class InvalidTopUp(ValueError):
    """The request cannot become a top-up; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CallbackAnswer:
    """What to tell Safaricom: ``accepted`` (HTTP 200, ResultCode 0) or refused, why."""

    accepted: bool
    reason: str


def _move(topup: TopUp, status: Literal["confirmed", "failed"]) -> None:
    if status not in _TRANSITIONS[topup.status]:
        raise ValueError(f"top-up {topup.id} cannot go from {topup.status} to {status}")
    topup.status = status
    topup.updated_at = topup.settled_at = utcnow()


# -- the request side ---------------------------------------------------------------


def check_amount(amount_minor: int) -> None:
    if amount_minor % 100:
        raise InvalidTopUp("amount_minor", "M-Pesa moves whole shillings: a multiple of 100")
    if not MIN_TOPUP_MINOR <= amount_minor <= MAX_TOPUP_MINOR:
        raise InvalidTopUp(
            "amount_minor",
            f"between {MIN_TOPUP_MINOR} and {MAX_TOPUP_MINOR} (KES 1 to KES 250,000)",
        )


def check_phone(phone_e164: str) -> None:
    if not _KENYAN_MOBILE.match(phone_e164):
        raise InvalidTopUp("phone_e164", "a Kenyan mobile number in E.164, e.g. +254712345678")


async def account_reference(session: AsyncSession, workspace: Workspace) -> str:
    """The workspace's fixed Paybill account number, made on first use."""
    while workspace.mpesa_account_ref is None:
        candidate = "SK" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))
        try:
            async with session.begin_nested():
                workspace.mpesa_account_ref = candidate
                await session.flush()
        except IntegrityError:  # taken by another workspace: draw again
            workspace.mpesa_account_ref = None
    return workspace.mpesa_account_ref


def _normalise_reference(value: object) -> str:
    return re.sub(r"\s+", "", str(value or "")).upper()


async def create_stk_topup(
    session: AsyncSession, workspace_id: str, amount_minor: int, phone_e164: str
) -> TopUp:
    """A ``pending`` top-up, not yet pushed: ``TopUpService.send_push`` sends it once the
    transaction has committed, so a push never goes out for a row that does not exist."""
    check_amount(amount_minor)
    check_phone(phone_e164)
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise LookupError(f"no workspace {workspace_id}")
    topup = TopUp(
        workspace_id=workspace_id,
        method="stk_push",
        amount_minor=amount_minor,
        phone_e164=phone_e164,
        account_reference=await account_reference(session, workspace),
        query_attempts=0,
    )
    session.add(topup)
    await session.flush()
    return topup


# -- settling -----------------------------------------------------------------------


async def _confirm(session: AsyncSession, topup: TopUp, reference: str | None) -> None:
    """Credit the wallet once for ``topup`` and mark it confirmed.

    ``reference`` is the M-Pesa receipt; a push settled by the STK query has none (Daraja's
    query answer carries no receipt), and then the CheckoutRequestID stands in for it.
    """
    shown_reference = reference or topup.checkout_request_id
    topup.provider_reference = reference
    entry = await ledger.top_up(
        session,
        topup.workspace_id,
        topup.amount_minor,
        idempotency_key=f"topup:{topup.id}",
        reference=shown_reference,
        details={
            "topup_id": topup.id,
            "provider": topup.provider,
            "provider_reference": shown_reference,
        },
    )
    topup.entry_id = entry.id
    _move(topup, "confirmed")
    await session.flush()


def _fail(topup: TopUp, result_code: str | None, reason: str) -> None:
    topup.result_code = result_code
    topup.failure_reason = reason[:255]
    _move(topup, "failed")


async def _locked_topup(session: AsyncSession, **where: str) -> TopUp | None:
    query = select(TopUp).filter_by(**where).with_for_update()
    found: TopUp | None = await session.scalar(query)
    return found


async def _receipt_known(session: AsyncSession, receipt: str) -> bool:
    topup = await session.scalar(select(TopUp.id).where(TopUp.provider_reference == receipt))
    payment = await session.scalar(select(MpesaPayment.id).where(MpesaPayment.trans_id == receipt))
    return topup is not None or payment is not None


async def _record_unmatched(
    session: AsyncSession,
    *,
    source: Literal["c2b", "stk"],
    trans_id: str,
    amount_minor: int,
    msisdn: str | None,
    reference: str | None,
    payload: dict[str, Any],
) -> None:
    try:
        async with session.begin_nested():
            session.add(
                MpesaPayment(
                    source=source,
                    trans_id=trans_id,
                    amount_minor=amount_minor,
                    msisdn=msisdn,
                    account_reference=reference,
                    payload=payload,
                )
            )
            await session.flush()
    except IntegrityError:
        return  # recorded already: the same payment reported twice
    log.warning(
        "M-Pesa payment %s of %s matches no workspace: kept for the operator",
        trans_id,
        ledger.format_kes(amount_minor),
    )


def _to_minor(value: object) -> int | None:
    """A Daraja amount (``1``, ``1.00``, ``"10"``) in minor units; None if not one."""
    try:
        amount = Decimal(str(value)) * 100
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount != amount.to_integral_value() or amount <= 0:
        return None
    return int(amount)


def _same_phone(reported: str, phone_e164: str) -> bool:
    """Whether M-Pesa's ``2547…`` names the push's phone; Safaricom may mask some digits
    (``2547****5678``), and a masked digit matches any."""
    digits = phone_e164.lstrip("+")
    reported = reported.strip().lstrip("+")
    return len(reported) == len(digits) and all(
        mine == theirs or theirs == "*" for mine, theirs in zip(digits, reported, strict=True)
    )


def _metadata(callback: dict[str, Any]) -> dict[str, Any]:
    items = (callback.get("CallbackMetadata") or {}).get("Item") or []
    if not isinstance(items, list):
        return {}
    return {
        str(item.get("Name")): item.get("Value")
        for item in items
        if isinstance(item, dict) and "Name" in item
    }


async def apply_stk_callback(session: AsyncSession, payload: object) -> CallbackAnswer:
    """Settle a push from the callback Safaricom posts to its ``CallBackURL``."""
    callback = payload.get("Body", {}).get("stkCallback") if isinstance(payload, dict) else None
    if not isinstance(callback, dict) or not callback.get("CheckoutRequestID"):
        return CallbackAnswer(False, "not an STK callback")
    checkout_id = str(callback["CheckoutRequestID"])
    try:
        result_code = int(str(callback.get("ResultCode")))
    except ValueError:
        return CallbackAnswer(False, "ResultCode is missing")
    result_desc = str(callback.get("ResultDesc") or f"M-Pesa result {result_code}")
    meta = _metadata(callback)
    receipt = str(meta["MpesaReceiptNumber"]) if meta.get("MpesaReceiptNumber") else None
    amount = _to_minor(meta.get("Amount"))

    topup = await _locked_topup(session, checkout_request_id=checkout_id)
    if topup is None:
        if result_code == 0 and receipt and amount is not None:
            # A push this database does not know (e.g. a crash just after sending it).
            await _record_unmatched(
                session,
                source="stk",
                trans_id=receipt,
                amount_minor=amount,
                msisdn=str(meta.get("PhoneNumber") or "") or None,
                reference=None,
                payload=payload if isinstance(payload, dict) else {},
            )
            return CallbackAnswer(True, "kept for the operator")
        log.warning("STK callback for unknown CheckoutRequestID %s refused", checkout_id)
        return CallbackAnswer(False, "unknown CheckoutRequestID")

    if result_code != 0:
        if topup.status == "pending":
            _fail(topup, str(result_code), result_desc)
            log.info("top-up %s failed: %s (%d)", topup.id, result_desc, result_code)
        return CallbackAnswer(True, "recorded")

    if receipt is None or amount is None:
        return CallbackAnswer(False, "a paid callback must carry Amount and MpesaReceiptNumber")
    if amount != topup.amount_minor:
        log.warning("STK callback for top-up %s names another amount: refused", topup.id)
        return CallbackAnswer(False, "the amount is not the push's")
    phone = meta.get("PhoneNumber")
    if phone is not None and topup.phone_e164 and not _same_phone(str(phone), topup.phone_e164):
        log.warning("STK callback for top-up %s names another phone: refused", topup.id)
        return CallbackAnswer(False, "the phone is not the push's")
    if topup.provider_reference == receipt:
        return CallbackAnswer(True, "already confirmed")
    if await _receipt_known(session, receipt):
        log.warning("STK callback for top-up %s reuses receipt %s: refused", topup.id, receipt)
        return CallbackAnswer(False, "the receipt was used already")
    if topup.status == "confirmed":
        if topup.provider_reference is not None:
            return CallbackAnswer(False, "the push was confirmed with another receipt")
        # Settled by the query, which knows no receipt: keep the receipt, credit nothing.
        topup.provider_reference = receipt
        topup.updated_at = utcnow()
        return CallbackAnswer(True, "already confirmed")
    if topup.status == "failed":
        log.warning("top-up %s was failed, and M-Pesa now reports it paid: crediting", topup.id)
    await _confirm(session, topup, receipt)
    return CallbackAnswer(True, "confirmed")


# -- Paybill (C2B) ------------------------------------------------------------------


async def _workspace_for_reference(session: AsyncSession, reference: str) -> Workspace | None:
    if not reference:
        return None
    found: Workspace | None = await session.scalar(
        select(Workspace).where(Workspace.mpesa_account_ref == reference)
    )
    return found


async def validate_c2b(
    session: AsyncSession, payload: object, *, settings: Settings
) -> tuple[str, str]:
    """Daraja's validation request: ``("0", "Accepted")`` or a documented C2B refusal."""
    if not isinstance(payload, dict):
        return "C2B00016", "Rejected"
    if str(payload.get("BusinessShortCode") or "") != settings.daraja_shortcode:
        return "C2B00015", "Rejected"
    if _to_minor(payload.get("TransAmount")) is None:
        return "C2B00013", "Rejected"
    reference = _normalise_reference(payload.get("BillRefNumber"))
    if await _workspace_for_reference(session, reference) is None:
        return "C2B00012", "Rejected"
    return "0", "Accepted"


async def apply_c2b_confirmation(
    session: AsyncSession, payload: object, *, settings: Settings
) -> CallbackAnswer:
    """A Paybill payment completed: credit the workspace its account number names, once;
    keep any other for the operator."""
    if not isinstance(payload, dict) or not payload.get("TransID"):
        return CallbackAnswer(False, "not a C2B confirmation")
    trans_id = str(payload["TransID"])
    amount = _to_minor(payload.get("TransAmount"))
    if amount is None:
        return CallbackAnswer(False, "TransAmount is not an amount")
    if str(payload.get("BusinessShortCode") or "") != settings.daraja_shortcode:
        log.warning("C2B confirmation %s for another shortcode refused", trans_id)
        return CallbackAnswer(False, "not this deployment's shortcode")
    if await _receipt_known(session, trans_id):
        return CallbackAnswer(True, "already recorded")
    reference = _normalise_reference(payload.get("BillRefNumber"))
    msisdn = str(payload.get("MSISDN") or "") or None
    workspace = await _workspace_for_reference(session, reference)
    if workspace is None:
        await _record_unmatched(
            session,
            source="c2b",
            trans_id=trans_id,
            amount_minor=amount,
            msisdn=msisdn,
            reference=reference or None,
            payload=payload,
        )
        return CallbackAnswer(True, "kept for the operator")
    try:
        async with session.begin_nested():
            await _paybill_topup(session, workspace.id, amount, trans_id, reference)
    except IntegrityError:  # the same TransID confirmed at this very moment by a twin
        return CallbackAnswer(True, "already recorded")
    return CallbackAnswer(True, "confirmed")


async def _paybill_topup(
    session: AsyncSession, workspace_id: str, amount_minor: int, trans_id: str, reference: str
) -> TopUp:
    topup = TopUp(
        workspace_id=workspace_id,
        method="paybill",
        amount_minor=amount_minor,
        account_reference=reference,
        provider_reference=trans_id,
        query_attempts=0,
    )
    session.add(topup)
    await session.flush()
    await _confirm(session, topup, trans_id)
    return topup


async def assign_payment(session: AsyncSession, payment_id: str, workspace_id: str) -> TopUp:
    """The operator credits an unmatched payment to a workspace (once)."""
    payment = await session.scalar(
        select(MpesaPayment).where(MpesaPayment.id == payment_id).with_for_update()
    )
    if payment is None:
        raise LookupError(f"no unmatched M-Pesa payment {payment_id}")
    if payment.status != "unmatched":
        raise ValueError(f"payment {payment_id} was assigned already")
    if await session.get(Workspace, workspace_id) is None:
        raise LookupError(f"no workspace {workspace_id}")
    topup = await _paybill_topup(
        session,
        workspace_id,
        payment.amount_minor,
        payment.trans_id,
        payment.account_reference or "",
    )
    payment.status = "assigned"
    payment.topup_id = topup.id
    payment.assigned_at = utcnow()
    await session.flush()
    return topup


# -- callback addresses -------------------------------------------------------------


def callback_token(settings: Settings) -> str:
    """The secret path segment of this deployment's callback URLs."""
    key = settings.signing_key()
    return hmac.new(key, b"sautikit daraja callbacks", hashlib.sha256).hexdigest()[:32]


def callback_urls(settings: Settings) -> dict[str, str]:
    """Where Safaricom posts: the STK callback, C2B validation and confirmation.

    Daraja refuses C2B URLs containing words such as "mpesa", "safaricom" or "query", so
    the paths avoid them.
    """
    base = f"{settings.effective_daraja_callback_base_url}/v1/topups/daraja"
    token = callback_token(settings)
    return {
        "stk": f"{base}/stk/{token}",
        "c2b_validation": f"{base}/c2b/validation/{token}",
        "c2b_confirmation": f"{base}/c2b/confirmation/{token}",
    }


def source_allowed(settings: Settings, address: str | None) -> bool:
    """Whether a callback from ``address`` passes the operator's allow-list (if any)."""
    if not settings.daraja_callback_allowlist:
        return True
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(entry, strict=False)
        for entry in settings.daraja_callback_allowlist
    )


# -- the service: sending pushes, asking about silent ones ---------------------------


class TopUpService:
    """Sends STK pushes and settles those whose callback never came, by the STK query.

    Owns its Daraja client; ``run`` sweeps until ``stop``; ``aclose`` releases the client.
    """

    def __init__(
        self, settings: Settings, database: Database, client: DarajaClient | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.client = client or DarajaClient(settings)
        self._stopping = asyncio.Event()

    async def aclose(self) -> None:
        await self.client.aclose()

    def stop(self) -> None:
        self._stopping.set()

    async def send_push(self, topup_id: str) -> None:
        """Send the push of a pending top-up once; a refusal fails the top-up."""
        async with self.database.transaction() as session:
            topup = await _locked_topup(session, id=topup_id)
            if topup is None or topup.status != "pending" or topup.push_sent_at is not None:
                return
            topup.push_sent_at = topup.updated_at = utcnow()
            phone = (topup.phone_e164 or "").lstrip("+")
            amount_kes = topup.amount_minor // 100
            reference = topup.account_reference or ""
        try:
            accepted = await self.client.stk_push(
                phone_digits=phone,
                amount_kes=amount_kes,
                account_reference=reference,
                description="Wallet top-up",
                callback_url=callback_urls(self.settings)["stk"],
            )
        except DarajaError as exc:
            async with self.database.transaction() as session:
                topup = await _locked_topup(session, id=topup_id)
                if topup is not None and topup.status == "pending":
                    _fail(topup, exc.code, f"M-Pesa refused the push: {exc}")
            log.warning("STK push for top-up %s refused: %s", topup_id, exc)
            return
        async with self.database.transaction() as session:
            topup = await _locked_topup(session, id=topup_id)
            if topup is not None:
                topup.checkout_request_id = accepted.checkout_request_id
                topup.merchant_request_id = accepted.merchant_request_id
                topup.updated_at = utcnow()

    async def settle_overdue(self, now: datetime | None = None) -> int:
        """Send pushes a crash left unsent; ask Daraja about pushes whose callback is late.

        Answers how many top-ups were looked at.
        """
        now = now or utcnow()
        overdue = now - timedelta(seconds=self.settings.daraja_stk_query_after_seconds)
        async with self.database.transaction() as session:
            rows = (
                await session.execute(
                    select(
                        TopUp.id, TopUp.push_sent_at, TopUp.checkout_request_id, TopUp.created_at
                    )
                    .where(
                        TopUp.status == "pending",
                        TopUp.method == "stk_push",
                        or_(TopUp.push_sent_at.is_(None), TopUp.push_sent_at < overdue),
                    )
                    .order_by(TopUp.id)
                    .limit(100)
                )
            ).all()
        for topup_id, sent_at, checkout_id, created_at in rows:
            if sent_at is None:
                if now - created_at < _UNSENT_GIVE_UP:
                    await self.send_push(topup_id)
                else:
                    await self._give_up(topup_id, "the push was never sent")
            elif checkout_id is None:
                await self._give_up(topup_id, "Sautikit stopped while sending the push")
            else:
                await self._query(topup_id, checkout_id)
        return len(rows)

    async def _give_up(self, topup_id: str, reason: str) -> None:
        async with self.database.transaction() as session:
            topup = await _locked_topup(session, id=topup_id)
            if topup is not None and topup.status == "pending":
                _fail(topup, None, reason)

    async def _query(self, topup_id: str, checkout_id: str) -> None:
        try:
            result = await self.client.stk_query(checkout_id)
            error = None
        except DarajaError as exc:
            result, error = None, str(exc)
        async with self.database.transaction() as session:
            topup = await _locked_topup(session, id=topup_id)
            if topup is None or topup.status != "pending":
                return  # the callback came meanwhile
            topup.query_attempts += 1
            topup.updated_at = utcnow()
            if result is None:
                if topup.query_attempts >= _MAX_QUERY_ATTEMPTS:
                    _fail(topup, None, error or "M-Pesa did not say whether the push was paid")
                return
            if result.result_code == 0:
                await _confirm(session, topup, None)
                log.info("top-up %s confirmed by the STK query", topup_id)
            else:
                _fail(topup, str(result.result_code), result.result_desc)

    async def run(self) -> None:
        """Sweep every third of the query delay until ``stop``."""
        interval = max(5.0, self.settings.daraja_stk_query_after_seconds / 3)
        while not self._stopping.is_set():
            try:
                await self.settle_overdue()
            except Exception:
                log.exception("the M-Pesa top-up sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
