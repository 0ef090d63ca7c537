"""What the desk needs from a venue. The paper broker and the Aster broker implement it."""

from typing import Protocol

from mcp_trader.trading.ledger import LedgerOrder
from mcp_trader.trading.orders import Intent, Mode, Quote, VenueOrder, VenuePosition
from mcp_trader.trading.rules import MarketRules


class Broker(Protocol):
    mode: Mode

    async def rules(self, symbol: str) -> MarketRules:
        """Tick, step, minimum quantity and notional of a unified symbol; InputError('symbol') when unknown."""

    async def quote(self, symbol: str) -> Quote:
        """The latest traded (or mark) price."""

    async def market(self, symbol: str) -> tuple[Quote, float | None]:
        """The latest quote and the ATR(14) of the trading timeframe's latest closed bars, in price units (the risk
        guard measures an order's risk with it); InputError('symbol') when unknown."""

    async def submit(self, intent: Intent) -> VenueOrder:
        """Send the order once, safely: after a timeout or 503 look it up by client order id before any resend.
        Raises OrderRejected when refused for good, OrderStatusUnknown when its fate cannot be told."""

    async def lookup(self, intent: Intent) -> VenueOrder | None:
        """The venue's view of an order by client order id; None when the venue never received it."""

    async def working(self, order: LedgerOrder) -> VenueOrder | None:
        """The latest state of a working (open, pending or unknown) ledger order; None when there is nothing new to
        record."""

    async def cancel(self, intent: Intent) -> VenueOrder:
        """Cancel an open order; answers its final state (it may have filled meanwhile)."""

    async def positions(self) -> list[VenuePosition]:
        """Open positions (non-zero quantity)."""

    async def balance(self) -> float:
        """Wallet balance in USDT."""

    async def close(self) -> None: ...
