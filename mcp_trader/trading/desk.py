"""The trading desk: every order path, paper and live, in one place.

place: resolve the order to the venue's units → (live) preview and token → in one transaction: idempotency by
client order id, the risk guard, the intent written as 'pending' → the broker sends it → in one transaction: the
venue's answer, its fills, position, cash, equity. A crash between the two transactions leaves a 'pending' order
that start-up resolves: paper orders never reached the (simulated) venue; live ones are looked up by client order
id on the venue.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from mcp_trader.config import Settings
from mcp_trader.errors import InputError, NotFoundError, Refused
from mcp_trader.policy.guard import Book, RiskFigures, check, halt_if_breached
from mcp_trader.store.db import Database
from mcp_trader.timefmt import now_iso
from mcp_trader.trading import confirm
from mcp_trader.trading.broker import Broker
from mcp_trader.trading.ledger import Ledger, LedgerFill, LedgerOrder
from mcp_trader.trading.orders import (
    Intent,
    Mode,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
    Quote,
    Status,
    VenueOrder,
)
from mcp_trader.trading.paper import PaperBroker, new_client_order_id
from mcp_trader.trading.placement import Placement
from mcp_trader.trading.prices import StorePrices
from mcp_trader.trading.valuation import Valuation, value

log = logging.getLogger(__name__)


class VenueRefused(Refused):
    """The venue refused the order; the ledger keeps it as rejected."""


class Desk:
    def __init__(self, settings: Settings, db: Database, ledger: Ledger, prices: StorePrices):
        self.settings = settings
        self.limits = settings.limits
        self.db = db  # one transaction per state change
        self.ledger = ledger
        self.prices = prices
        self._brokers: dict[str, Broker] = {}
        self._recovered: set[str] = set()
        self._opening = asyncio.Lock()

    async def broker(self, mode: Mode) -> Broker:
        async with self._opening:
            if mode not in self._brokers:
                self._brokers[mode] = self._paper_broker() if mode == "paper" else self._live_broker()
            if mode not in self._recovered:
                await self.recover(mode, self._brokers[mode])
                self._recovered.add(mode)
            return self._brokers[mode]

    def _paper_broker(self) -> Broker:
        return PaperBroker(self.prices, self.settings.paper_slippage_bps)

    def _live_broker(self) -> Broker:
        if not self.settings.live_trading:
            raise InputError("mode", "live trading is not enabled on this server",
                             "mode='paper'; live needs MCP_TRADER_LIVE_TRADING=true and ASTER_USER, ASTER_SIGNER, "
                             "ASTER_PRIVATE_KEY in the server's environment")
        from mcp_trader.trading.aster import AsterBroker

        return AsterBroker(self.settings)

    # --- orders -------------------------------------------------------------------------------
    async def place(self, request: OrderRequest, confirm_token: str | None = None) -> Placement:
        broker = await self.broker(request.mode)
        await self.refresh(request.mode)
        symbol = perpetual(request.symbol)
        quote, atr = await broker.market(symbol)
        intent = await self._resolve(broker, request, symbol, quote)
        asked = _asked(request, symbol)
        if request.mode == "live" and confirm_token is None:
            return await self._preview(broker, intent, asked, quote, atr)
        ledger = self.ledger
        marks = await self._marks(broker, request.mode, {symbol: quote.price})
        await self._roll_day(ledger, request.mode, marks)
        async with self.db.transaction() as conn:
            if confirm_token is not None:
                intent = await confirm.redeem(self.ledger, conn, confirm_token, asked)
            known = await ledger.order(conn, intent.client_order_id)
            if known is not None and known.status != "not_placed":
                return await self._duplicate(ledger, conn, known, asked)
            book = await self._book(ledger, conn, request.mode, marks)
            risk = check(self.limits, intent, quote.price, atr, book, datetime.now(UTC))
            await ledger.insert_intent(conn, intent, asked, risk.model_dump(mode="json"), quote.price, quote.time)
        return await self._send(broker, intent, risk, quote)

    async def _send(self, broker: Broker, intent: Intent, risk: RiskFigures, quote: Quote) -> Placement:
        try:
            venue = await broker.submit(intent)
        except OrderRejected as refused:
            await self._set(intent, "rejected", refused.reason)
            raise VenueRefused(f"the venue rejected order {intent.client_order_id}: {refused.reason}") from None
        except (OrderStatusUnknown, OSError, TimeoutError) as lost:
            await self._set(intent, "unknown", f"the venue's answer was lost ({type(lost).__name__}); "
                                               "reconciled by client order id on the next call")
            order = await self.order(intent.client_order_id)
            return Placement(outcome="unknown", order=order, risk=risk, quote=quote,
                             note="the order may or may not be on the venue: get_orders reconciles it by its "
                                  "client order id before anything else is sent")
        fills = await self._record(intent.mode, venue)
        order = await self.order(intent.client_order_id)
        return Placement(outcome="placed", order=order, fills=fills, risk=risk, quote=quote)

    async def _preview(self, broker: Broker, intent: Intent, asked: dict, quote: Quote,
                       atr: float | None) -> Placement:
        ledger = self.ledger
        marks = await self._marks(broker, intent.mode, {intent.symbol: quote.price})
        await self._roll_day(ledger, intent.mode, marks)
        async with self.db.transaction() as conn:
            known = await ledger.order(conn, intent.client_order_id)
            if known is not None and known.status != "not_placed":
                return await self._duplicate(ledger, conn, known, asked)
            risk = check(self.limits, intent, quote.price, atr, await self._book(ledger, conn, "live", marks),
                         datetime.now(UTC))
            token, expires = await confirm.issue(self.ledger, conn, intent, asked, self.settings.confirm_ttl_s)
        price = intent.price if intent.type == "limit" and intent.price is not None else quote.price
        fee = getattr(broker, "taker_fee", 0.00035)
        estimate = {"fill_price": price, "quantity": intent.quantity, "notional": intent.quantity * price,
                    "fee": intent.quantity * price * fee, "fee_rate": fee}
        return Placement(outcome="preview", risk=risk, quote=quote, estimate=estimate, confirm_token=token,
                         expires_at=expires, order=None,
                         note=f"nothing was sent. To send this order, call place_order again with the same arguments "
                              f"and confirm_token before {expires}.")

    async def _duplicate(self, ledger: Ledger, conn, known: LedgerOrder, asked: dict) -> Placement:
        if await ledger.request_of(conn, known.client_order_id) != asked:
            raise InputError("client_order_id", f"{known.client_order_id} was already used for a different order",
                             "a new client_order_id, or the same arguments to look the first one up")
        return Placement(outcome="duplicate", order=known,
                         note="an order with this client_order_id already exists; nothing new was sent")

    async def cancel(self, mode: Mode, client_order_id: str) -> LedgerOrder:
        broker = await self.broker(mode)
        await self.refresh(mode)  # an order that newer bars (or the venue) already filled is not canceled
        order = await self.order(client_order_id)
        if order.mode != mode:
            raise InputError("mode", f"order {client_order_id} is a {order.mode} order", f"mode='{order.mode}'")
        if order.status not in ("open", "partially_filled"):
            raise InputError("client_order_id", f"order {client_order_id} is {order.status}, not open",
                             "an open limit order (get_orders lists them)")
        venue = await broker.cancel(order.intent())
        await self._record(mode, venue)
        return await self.order(client_order_id)

    async def order(self, client_order_id: str) -> LedgerOrder:
        found = await self.ledger.order(self.db.conn, client_order_id)
        if found is None:
            raise NotFoundError(f"no order with client_order_id {client_order_id!r}; get_orders lists them")
        return found

    async def orders(self, mode: Mode, since: str | None = None, statuses: tuple[str, ...] | None = None,
                     symbol: str | None = None, limit: int = 100) -> list[LedgerOrder]:
        await self.broker(mode)
        await self.refresh(mode)
        return await self.ledger.orders(mode, since, statuses, perpetual(symbol) if symbol else None, limit)

    # --- the account --------------------------------------------------------------------------
    async def valuation(self, mode: Mode, since: str | None = None, record: bool = True) -> Valuation:
        """The account marked to market. With record=False (a monitoring page polling it) nothing is written: no
        equity snapshot, no day roll; the daily stop still rolls and halts on the next order or get_pnl."""
        broker = await self.broker(mode)
        await self.refresh(mode)
        ledger = self.ledger
        marks = await self._marks(broker, mode, {})
        if not record:
            result = await value(ledger, self.db.conn, mode, marks, since)
            return await self._with_account(ledger, result)
        async with self.db.transaction() as conn:
            result = await value(ledger, conn, mode, marks, since)
            await self._daily(ledger, conn, mode, result.equity)
            await ledger.snapshot(conn, mode, now_iso("milliseconds"), result.equity, result.cash,
                                  result.unrealized_pnl, result.gross_notional)
        if mode == "paper":
            from mcp_trader.trading.funding import uncovered

            result = result.model_copy(update={"notes": await uncovered(self, ledger)})
        return await self._with_account(ledger, result)

    async def refresh(self, mode: Mode) -> None:
        """Bring working orders up to date: paper limits met by newer bars, funding settled on held paper positions,
        and live orders whose state is open or unknown."""
        broker = self._brokers.get(mode)
        if broker is None:
            return
        ledger = self.ledger
        news = [(order, venue) for order in await ledger.live_orders(self.db.conn, mode)
                if (venue := await broker.working(order)) is not None]
        if mode != "paper":
            for _, venue in news:
                await self._record(mode, venue)
            return
        from mcp_trader.trading.funding import settle_paper_funding

        # In the paper market's time order: each settlement is charged on what was held then, before a later fill.
        for order, venue in sorted(news, key=lambda n: min((f.time for f in n[1].fills), default="")):
            if venue.fills:
                await settle_paper_funding(self, ledger, until=min(f.time for f in venue.fills))
                if order.reduce_only:
                    venue = await self._reduce_only_fill(ledger, order, venue)
            await self._record(mode, venue)
        await settle_paper_funding(self, ledger)

    async def _reduce_only_fill(self, ledger: Ledger, order: LedgerOrder, venue: VenueOrder) -> VenueOrder:
        """A resting reduce_only paper order whose position shrank meanwhile expires instead of opening a new one."""
        held = (await ledger.positions(self.db.conn, order.mode)).get(order.symbol)
        quantity = held.quantity if held else 0.0
        room = abs(quantity) if quantity and (quantity > 0) == (order.side == "sell") else 0.0
        if venue.filled_quantity <= room + 1e-12:
            return venue
        return VenueOrder(client_order_id=order.client_order_id, venue_order_id=venue.venue_order_id,
                          status="expired", reason=f"reduce_only: the position is {quantity:g} now, too small for "
                                               f"this {order.side} of {order.quantity:g}; expired unfilled")

    async def recover(self, mode: Mode, broker: Broker) -> None:
        """On start: orders a stopped server left pending or unknown get their true state."""
        ledger = self.ledger
        for order in await ledger.live_orders(self.db.conn, mode):
            if order.status not in ("pending", "unknown"):
                continue
            if order.status == "pending" and await ledger.sent_by_another_server(self.db.conn, order.client_order_id):
                continue  # that server is sending it now and records the answer itself
            venue = await broker.lookup(order.intent())  # the paper venue never holds one
            if venue is None:
                await self._set(order.intent(), "not_placed", "the server stopped before the order reached the venue",
                                only_from=("pending", "unknown"))
            else:
                await self._record(mode, venue)
        if mode == "live":
            from mcp_trader.trading.reconcile import reconcile_positions

            await reconcile_positions(self, ledger, broker)

    # --- helpers ------------------------------------------------------------------------------
    async def _resolve(self, broker: Broker, request: OrderRequest, symbol: str, quote: Quote) -> Intent:
        rules = await broker.rules(symbol)
        market = request.type == "market"
        price = rules.check_price(request.price) if request.price is not None else None
        if price is not None:
            rules.check_band(request.side, price, quote.price)
        if request.quantity is not None:
            wanted = request.quantity
        else:
            assert request.notional is not None  # OrderRequest holds exactly one of quantity and notional
            wanted = request.notional / (price or quote.price)
        try:
            quantity = rules.check_quantity(rules.floor_quantity(wanted, market), market, wanted)
            rules.check_notional(quantity, price or quote.price, request.reduce_only)
        except InputError as error:
            if request.notional is None or error.field != "quantity":
                raise
            raise InputError("notional", f"{request.notional:g} USDT at {price or quote.price:g} is {wanted:.6g} "
                                         f"{rules.base}: {error.problem}", error.accepted) from None
        return Intent(client_order_id=request.client_order_id or new_client_order_id(), mode=request.mode,
                      symbol=symbol, side=request.side, type=request.type, quantity=quantity, price=price,
                      reduce_only=request.reduce_only)

    async def _marks(self, broker: Broker, mode: Mode, known: dict[str, float]) -> dict[str, float]:
        held = await self.ledger.positions(self.db.conn, mode)
        marks = dict(known)
        for symbol in held:
            if symbol not in marks:
                marks[symbol] = (await broker.quote(symbol)).price
        return marks

    async def _book(self, ledger: Ledger, conn, mode: Mode, marks: dict[str, float]) -> Book:
        positions = await ledger.positions(conn, mode)
        quantities = {s: p.quantity for s, p in positions.items()}
        sides: dict[str, tuple[float, float]] = {}  # per symbol: buys and sells still working
        for working in await ledger.live_orders(conn, mode):  # orders still working count as if filled
            signed = working.quantity - working.filled_quantity
            quantities[working.symbol] = quantities.get(working.symbol, 0.0) + (
                signed if working.side == "buy" else -signed)
            buys, sells = sides.get(working.symbol, (0.0, 0.0))
            sides[working.symbol] = (buys + signed, sells) if working.side == "buy" else (buys, sells + signed)
            marks.setdefault(working.symbol, working.price or working.reference_price)
        for symbol, position in positions.items():
            marks.setdefault(symbol, position.entry_price)
        account = await ledger.account(conn, mode)
        equity = account.cash + sum(p.quantity * marks[s] for s, p in positions.items())
        start = await self._daily(ledger, conn, mode, equity)
        account = await ledger.account(conn, mode)
        halted = datetime.fromisoformat(account.halted_until) if account.halted_until else None
        return Book(quantities=quantities, marks=marks, equity=equity, day_start_equity=start, halted_until=halted,
                    positions={s: p.quantity for s, p in positions.items()}, working=sides)

    async def _roll_day(self, ledger: Ledger, mode: Mode, marks: dict[str, float]) -> None:
        """Record the day's start and a breached daily stop in a transaction of their own, so that they stand when
        the order's transaction is rolled back (a refused order)."""
        async with self.db.transaction() as conn:
            await self._book(ledger, conn, mode, dict(marks))

    async def _daily(self, ledger: Ledger, conn, mode: Mode, equity: float) -> float:
        """Roll the UTC day (its starting equity; an expired halt lifts) and halt new risk on a breach."""
        account = await ledger.account(conn, mode)
        now = datetime.now(UTC)
        update: dict[str, Any] = {}
        if account.day != now.date().isoformat():
            update = {"day": now.date().isoformat(), "day_start_equity": equity}
        halted = account.halted_until
        if halted and datetime.fromisoformat(halted) <= now:
            update |= {"halted_until": None, "halt_reason": None}
            halted = None
        start = update.get("day_start_equity") or account.day_start_equity or equity
        until = None if halted else halt_if_breached(self.limits, equity, start, now)
        if until is not None:
            reason = (f"equity {equity:,.2f} is {1 - equity / start:.2%} under the day's start {start:,.2f}, at or "
                      f"over the daily loss limit {self.limits.daily_loss_limit:.2%}")
            update |= {"halted_until": until.isoformat(), "halt_reason": reason}
            log.warning("%s account: daily loss stop: %s", mode, reason)
        if update:
            await ledger.save_account(conn, account.model_copy(update=update))
        return start

    async def reset_daily_stop(self, mode: Mode) -> Valuation:
        """A person's decision (a CLI command, not a tool): lift today's halt and restart the day at current equity."""
        valuation = await self.valuation(mode)
        ledger = self.ledger
        async with self.db.transaction() as conn:
            account = await ledger.account(conn, mode)
            await ledger.save_account(conn, account.model_copy(update={
                "halted_until": None, "halt_reason": None, "day_start_equity": valuation.equity,
                "day": datetime.now(UTC).date().isoformat()}))
        return valuation

    async def _record(self, mode: Mode, venue: VenueOrder) -> list[LedgerFill]:
        ledger = self.ledger
        async with self.db.transaction() as conn:
            return await ledger.record(conn, mode, venue)

    async def _set(self, intent: Intent, status: Status, reason: str, only_from: tuple[str, ...] | None = None) -> None:
        ledger = self.ledger
        async with self.db.transaction() as conn:
            await ledger.set_status(conn, intent.client_order_id, status, reason, only_from)

    async def _with_account(self, ledger: Ledger, result: Valuation) -> Valuation:
        account = await ledger.account(self.db.conn, result.mode)
        return result.model_copy(update={"halted_until": account.halted_until, "halt_reason": account.halt_reason,
                                         "day_start_equity": account.day_start_equity, "limits": self.limits})

    async def close(self) -> None:
        for broker in self._brokers.values():
            await broker.close()
        self._brokers.clear()


def perpetual(text: str) -> str:
    """BTC, BTC/USDT or BTC/USDT:USDT → BTC/USDT:USDT (orders go to USDT perpetuals)."""
    from mcp_trader.data.symbols import parse_symbol

    cleaned = text.strip().upper()
    if "/" not in cleaned:
        cleaned += "/USDT"
    symbol = parse_symbol(cleaned, "perp", field="symbol")
    if symbol.quote != "USDT":
        raise InputError("symbol", f"{text!r}: only USDT-margined perpetuals are traded", "BTC/USDT:USDT or BTC")
    return f"{symbol.base}/USDT:USDT"


def _asked(request: OrderRequest, symbol: str) -> dict[str, Any]:
    """The caller's order as compared for idempotency and confirmation (mode and ids aside)."""
    fields = request.model_dump(exclude={"client_order_id"})
    return {**fields, "symbol": symbol}

