"""M-Pesa callbacks shaped as Safaricom's Daraja documentation shows them.

daraja-mock sends no callbacks, so tests post these themselves: the STK callback to the
push's ``CallBackURL``, and the C2B validation and confirmation requests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["c2b_payment", "stk_callback"]


def stk_callback(
    checkout_request_id: str,
    *,
    result_code: int = 0,
    result_desc: str | None = None,
    amount_kes: float | int = 1,
    receipt: str = "NLJ7RT61SV",
    phone: int = 254708374149,
    merchant_request_id: str = "29115-34620561-1",
) -> dict[str, Any]:
    """An STK callback: paid (with ``CallbackMetadata``) or not (``ResultCode`` ≠ 0)."""
    callback: dict[str, Any] = {
        "MerchantRequestID": merchant_request_id,
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": result_desc
        or (
            "The service request is processed successfully."
            if result_code == 0
            else "Request cancelled by user"
        ),
    }
    if result_code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": amount_kes},
                {"Name": "MpesaReceiptNumber", "Value": receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": 20191219102115},
                {"Name": "PhoneNumber", "Value": phone},
            ]
        }
    return {"Body": {"stkCallback": callback}}


def c2b_payment(
    trans_id: str,
    *,
    amount: str = "100.00",
    bill_ref: str,
    shortcode: str = "600638",
    msisdn: str = "2547 ***** 126",
) -> dict[str, Any]:
    """The body of a C2B (Paybill) validation or confirmation request."""
    return {
        "TransactionType": "Pay Bill",
        "TransID": trans_id,
        "TransTime": "20191122063845",
        "TransAmount": amount,
        "BusinessShortCode": shortcode,
        "BillRefNumber": bill_ref,
        "InvoiceNumber": "",
        "OrgAccountBalance": "49197.00",
        "ThirdPartyTransID": "",
        "MSISDN": msisdn,
        "FirstName": "John",
        "MiddleName": "",
        "LastName": "Doe",
    }
