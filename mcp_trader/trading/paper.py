"""The paper broker: the venue simulated on stored prices. Market orders fill at the latest close plus slippage and
pay the taker fee; limit orders that are marketable fill at once (taker), the rest rest until a later bar trades
through their price and then fill at it (maker). Precision and minimum notional follow the venue's rules."""

import secrets

from mcp_trader.backtest.params import ASTER_MAKER_FEE, ASTER_TAKER_FEE
from mcp_trader.errors import InputError
from mcp_trader.trading.ledger import LedgerOrder
from mcp_trader.trading.orders import Intent, Mode, Quote, VenueFill, VenueOrder, VenuePosition
from mcp_trader.trading.prices import StorePrices
from mcp_trader.trading.rules import MarketRules, bundled_rules


class PaperBroker:
    mode: Mode = "paper"

    def __init__(self, prices: StorePrices, slippage_bps: float):
        self.prices = prices
        self.slippage = slippage_bps / 1e4
        self.taker_fee, self.maker_fee = ASTER_TAKER_FEE, ASTER_MAKER_FEE

    async def rules(self, symbol: str) -> MarketRules:
        known = bundled_rules()
        if symbol not in known:
            raise InputError("symbol", f"{symbol} is not traded here", ", ".join(sorted(known)))
        return known[symbol]

    async def quote(self, symbol: str) -> Quote:
        return (await self.prices.market(symbol)).quote

    async def market(self, symbol: str) -> tuple[Quote, float | None]:
        market = await self.prices.market(symbol)
        return market.quote, market.atr

    async def submit(self, intent: Intent) -> VenueOrder:
        quote = await self.quote(intent.symbol)
        direction = 1 if intent.side == "buy" else -1
        if intent.type == "market":
            return self._filled(intent, quote.price * (1 + direction * self.slippage), "taker", quote.time)
        limit = _limit_price(intent)
        if direction * (quote.price - limit) <= 0:  # marketable: trades at the market, no worse than limit
            price = min(quote.price * (1 + self.slippage), limit) if direction > 0 else \
                max(quote.price * (1 - self.slippage), limit)
            return self._filled(intent, price, "taker", quote.time)
        return VenueOrder(client_order_id=intent.client_order_id, venue_order_id=_venue_id(intent), status="open")

    async def sweep(self, intent: Intent, since: str) -> VenueOrder | None:
        """A resting limit order met by a bar since `since`: filled at its price as a maker; else None."""
        bars, limit = await self.prices.bars_after(intent.symbol, since), _limit_price(intent)
        crossed = bars["low"] <= limit if intent.side == "buy" else bars["high"] >= limit
        if not crossed.any():
            return None
        when = bars.index[crossed.to_numpy().argmax()]
        return self._filled(intent, limit, "maker", when.isoformat())

    async def lookup(self, intent: Intent) -> VenueOrder | None:
        return None  # the paper venue is the ledger: an order it holds was booked with its state

    async def working(self, order: LedgerOrder) -> VenueOrder | None:
        if order.type == "limit" and order.status == "open":
            return await self.sweep(order.intent(), order.reference_time)
        return None

    async def cancel(self, intent: Intent) -> VenueOrder:
        return VenueOrder(client_order_id=intent.client_order_id, venue_order_id=_venue_id(intent),
                          status="canceled", reason="canceled on request")

    async def positions(self) -> list[VenuePosition]:
        return []

    async def balance(self) -> float:
        return 0.0

    async def close(self) -> None:
        return None

    def _filled(self, intent: Intent, price: float, liquidity: str, time: str) -> VenueOrder:
        fee = intent.quantity * price * (self.taker_fee if liquidity == "taker" else self.maker_fee)
        fill = VenueFill(trade_id=f"paper-{intent.client_order_id}", quantity=intent.quantity, price=price, fee=fee,
                         liquidity=liquidity, time=time)
        return VenueOrder(client_order_id=intent.client_order_id, venue_order_id=_venue_id(intent), status="filled",
                          filled_quantity=intent.quantity, average_price=price, fills=[fill])


def _limit_price(intent: Intent) -> float:
    if intent.price is None:
        raise ValueError(f"limit order {intent.client_order_id} has no price")
    return intent.price


def _venue_id(intent: Intent) -> str:
    return f"paper-{intent.client_order_id}"


def new_client_order_id() -> str:
    return f"mt-{secrets.token_hex(10)}"
