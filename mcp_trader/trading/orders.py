"""The order contract at every boundary: what a caller asks for, what the venue answers, what the ledger keeps."""

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator

Mode = Literal["paper", "live"]
Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
# pending: written, not yet known to the venue; unknown: sent, the venue's answer was lost (reconcile resolves it);
# not_placed: known never to have reached the venue (a retry with the same client order id may place it).
Status = Literal[
    "pending", "unknown", "open", "partially_filled", "filled", "canceled", "rejected", "expired", "not_placed"
]
LIVE_STATES = ("pending", "unknown", "open", "partially_filled")
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Aster's newClientOrderId rule


class OrderRequest(BaseModel, frozen=True):
    """One order as a caller asks for it. Symbols are unified perpetuals (BTC/USDT:USDT) or their base (BTC)."""

    symbol: str
    side: Side
    quantity: float | None = Field(None, gt=0, description="Base-asset units.")
    notional: float | None = Field(None, gt=0, description="Quote (USDT) value, converted at the latest price.")
    type: OrderType = "market"
    price: float | None = Field(None, gt=0, description="Limit price (limit orders only).")
    reduce_only: bool = False
    mode: Mode = "paper"
    client_order_id: str | None = Field(None, pattern=CLIENT_ID.pattern)

    @model_validator(mode="after")
    def _consistent(self) -> "OrderRequest":
        if (self.quantity is None) == (self.notional is None):
            raise ValueError("give exactly one of quantity (base units) or notional (USDT)")
        if self.type == "limit" and self.price is None:
            raise ValueError("a limit order needs price")
        if self.type == "market" and self.price is not None:
            raise ValueError("a market order takes no price; use type='limit' to set one")
        return self


class Intent(BaseModel, frozen=True):
    """An order resolved to venue units (rounded quantity and price), as written to the ledger before sending."""

    client_order_id: str
    mode: Mode
    symbol: str  # unified perpetual, e.g. BTC/USDT:USDT
    side: Side
    type: OrderType
    quantity: float
    price: float | None
    reduce_only: bool


class VenueFill(BaseModel, frozen=True):
    trade_id: str
    quantity: float
    price: float
    fee: float  # USDT paid (negative = rebate)
    liquidity: Literal["maker", "taker"]
    time: str  # ISO 8601 UTC


class VenueOrder(BaseModel, frozen=True):
    """What the venue says about one order, with every fill it has so far."""

    client_order_id: str
    venue_order_id: str | None = None
    status: Status
    filled_quantity: float = 0.0
    average_price: float | None = None
    fills: list[VenueFill] = Field(default_factory=list)
    reason: str | None = None  # why rejected / canceled, in the venue's words


class VenuePosition(BaseModel, frozen=True):
    symbol: str
    quantity: float  # signed: negative is short
    entry_price: float
    mark_price: float | None = None


class Quote(BaseModel, frozen=True):
    symbol: str
    price: float
    time: str  # when this price was current (ISO 8601 UTC)
    source: str


class OrderRejected(Exception):
    """The venue refused the order for good: nothing was placed, a retry would be refused too."""

    def __init__(self, reason: str, code: str | None = None):
        self.reason, self.code = reason, code
        super().__init__(reason)


class OrderStatusUnknown(Exception):
    """The venue's answer was lost and a look-up could not settle it: the order stays 'unknown' until reconciled."""
