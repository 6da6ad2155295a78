"""M-Pesa top-ups through Safaricom's Daraja API: STK push and Paybill (C2B)."""

from sautikit.billing.mpesa.daraja import DarajaClient, DarajaError
from sautikit.billing.mpesa.topups import TopUpService

__all__ = ["DarajaClient", "DarajaError", "TopUpService"]
