"""What place_order answers: a live preview with its token, or the order as the ledger now holds it."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_trader.policy.guard import RiskFigures
from mcp_trader.trading.ledger import LedgerFill, LedgerOrder
from mcp_trader.trading.orders import Quote


class Placement(BaseModel):
    outcome: Literal["preview", "placed", "duplicate", "unknown"]
    order: LedgerOrder | None = None
    fills: list[LedgerFill] = Field(default_factory=list)
    risk: RiskFigures | None = None
    quote: Quote | None = None
    estimate: dict[str, Any] | None = None  # live preview: fill price, notional and fee it expects
    confirm_token: str | None = None
    expires_at: str | None = None
    note: str | None = None
