"""Orders and the account: place_order, cancel_order, get_orders, get_pnl. Paper by default; live is guarded."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from mcp_trader.backtest.params import DEFAULT_MARGIN
from mcp_trader.policy.limits import DEFAULT_TAKE_PROFIT_ATR
from mcp_trader.timefmt import utc
from mcp_trader.tools.context import home_of, tool_errors
from mcp_trader.tools.contract import CostMargin, EdgeChoice, Identifier, SymbolList, SymbolText, Token
from mcp_trader.tools.jobs import JobView
from mcp_trader.trading.ledger import LedgerOrder
from mcp_trader.trading.orders import CLIENT_ID, Mode, OrderType, Side
from mcp_trader.trading.orders import Status as OrderStatus
from mcp_trader.trading.placement import Placement
from mcp_trader.trading.valuation import Valuation

if TYPE_CHECKING:
    from mcp_trader.trading.desk import Desk

PLACE = """Place an order on the paper account (default) or, where this server enables it, live on Aster DEX.

Orders go to USDT perpetuals (BTC, BTC/USDT or BTC/USDT:USDT). Give quantity (base units) or notional (USDT).
Market orders fill at the latest price plus slippage and the taker fee; limit orders rest until the price trades
through them (a marketable limit fills at once). Quantities are truncated to the venue's step; an off-tick price,
a size under the minimum or a notional under the venue's minimum is refused. Every order passes the server's risk
guard (risk per trade at a stop of stop_atr × ATR, max open positions, max notional per order, max leverage, the
daily loss stop): the limits come from the server's configuration and no argument changes them; a refusal names
the limit and by how much the order is over it. Reuse client_order_id to retry safely: an order already placed
with it is answered, not sent again.
Live: the first call sends nothing and answers a preview (estimated fill, fees, the risk figures) and a
confirm_token that expires; call again with the same arguments and that token to send the order.
Cost: milliseconds on paper; a live order is a few venue round trips. Answer: the order as the ledger holds it
(status, filled quantity, average price, fees), its fills and the risk figures, or the live preview."""


async def place_order(
    ctx: Context,
    symbol: Annotated[SymbolText, Field(description="BTC, BTC/USDT or BTC/USDT:USDT: a USDT perpetual.")],
    side: Annotated[Side, Field(description="buy or sell.")],
    quantity: Annotated[float | None, Field(description="Base-asset units, > 0; or give notional.")] = None,
    notional: Annotated[float | None, Field(description="USDT value, > 0, at the latest price; or quantity.")] = None,
    type: Annotated[OrderType, Field(description="market or limit.")] = "market",
    price: Annotated[float | None, Field(description="Limit price, on the venue's tick (limit only).")] = None,
    reduce_only: Annotated[bool, Field(description="Only shrink a position, never open or grow one.")] = False,
    mode: Annotated[Mode, Field(description="paper (default) or live.")] = "paper",
    client_order_id: Annotated[
        str | None,
        Field(pattern=CLIENT_ID.pattern, description=f"Your id for safe retries, {CLIENT_ID.pattern}; made up when "
                                                     "omitted."),
    ] = None,
    confirm_token: Annotated[
        Token | None, Field(description="Live only: the token of this order's preview.")
    ] = None,
) -> Placement:
    from mcp_trader.trading.orders import OrderRequest

    async with tool_errors():
        try:
            request = OrderRequest(symbol=symbol, side=side, quantity=quantity, notional=notional, type=type,
                                   price=price, reduce_only=reduce_only, mode=mode, client_order_id=client_order_id)
        except ValidationError as error:
            raise ToolError(_first(error)) from None
        if confirm_token is not None and mode != "live":
            raise ToolError("confirm_token: only live orders are confirmed; accepted: omit it for paper orders")
        return await (await _desk(ctx)).place(request, confirm_token)


async def cancel_order(
    ctx: Context,
    client_order_id: Annotated[str, Field(pattern=CLIENT_ID.pattern, description="The open order's client_order_id.")],
    mode: Annotated[Mode, Field(description="paper or live.")] = "paper",
) -> LedgerOrder:
    async with tool_errors():
        return await (await _desk(ctx)).cancel(mode, client_order_id)


class OrderList(BaseModel):
    mode: Mode
    orders: list[LedgerOrder]


async def get_orders(
    ctx: Context,
    mode: Annotated[Mode, Field(description="paper or live.")] = "paper",
    status: Annotated[
        list[OrderStatus] | None, Field(description="Only these states, e.g. ['open']; all when omitted.")
    ] = None,
    symbol: Annotated[SymbolText | None, Field(description="Only this symbol.")] = None,
    since: Annotated[datetime | None, Field(description="Only orders created at or after this time (UTC).")] = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="Newest first, at most this many.")] = 100,
) -> OrderList:
    async with tool_errors():
        orders = await (await _desk(ctx)).orders(mode, _iso(since), tuple(status) if status else None, symbol, limit)
    return OrderList(mode=mode, orders=orders)


async def get_pnl(
    ctx: Context,
    mode: Annotated[Mode, Field(description="paper or live.")] = "paper",
    since: Annotated[datetime | None, Field(description="Per-symbol realised PnL, fees and funding from this time "
                                                        "(UTC); all time when omitted.")] = None,
) -> Valuation:
    async with tool_errors():
        return await (await _desk(ctx)).valuation(mode, _iso(since))


def _iso(value: datetime | None) -> str | None:
    """In UTC, as the ledger writes its times, so that the ledger's string comparisons hold (naive means UTC)."""
    if value is None:
        return None
    return utc(value).isoformat()


async def _desk(ctx: Context) -> "Desk":
    from mcp_trader.trading.desks import desk_of  # pandas & co. load on the first trading call

    return await desk_of(home_of(ctx))


def _first(error: ValidationError) -> str:
    issue = error.errors()[0]
    field = ".".join(str(p) for p in issue["loc"]) or "order"
    return f"{field}: {issue['msg'].removeprefix('Value error, ')}"


def register(server: MCPServer, inference: bool = False) -> None:
    if not inference:
        _register_loop(server)
    destructive = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True)
    server.add_tool(place_order, title="Place an order", description=PLACE, annotations=destructive)
    server.add_tool(
        cancel_order, title="Cancel an order", annotations=destructive,
        description="Cancel an open (resting limit) order by its client_order_id. Answers the order's final state: "
                    "it may have filled before the cancel arrived. Cost: milliseconds on paper, a venue round trip "
                    "live.",
    )
    read = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True)
    server.add_tool(
        get_orders, title="List orders", annotations=read,
        description="Orders of the paper or live account from the ledger, newest first: status (pending, open, "
                    "filled, canceled, rejected, unknown, not_placed…), quantity, filled quantity, average price, "
                    "fees, reason. Working orders are brought up to date first (paper limits met by newer bars; "
                    "live orders looked up on the venue). Cost: milliseconds (live: a look-up per working order).",
    )
    server.add_tool(
        get_pnl, title="Account PnL", annotations=read,
        description="The paper or live account marked to the latest price: equity, cash, open positions (entry, "
                    "mark, unrealised PnL), realised PnL, fees and funding in total and per symbol (since a time), "
                    "leverage, the ledger's balance check, the risk limits and whether the daily loss stop holds. "
                    "Each call also records an equity snapshot (trader://accounts/{mode}/equity.json). Cost: "
                    "milliseconds.",
    )


LOOP = """Start the paper-trading loop: a job that, on each new bar, computes the signals get_signals gives (a model,
or the confluence rule), applies the bar-close rules the backtest engine runs (stops and take-profits met by the bar,
exits on an opposite signal or the holding limit, entries by strength while positions stay under the limit, sized
risk × equity / (stop_atr × ATR), cut to the order notional limit and max leverage: the server's limits) and
places paper market orders through the risk guard. It
polls every poll_seconds for a new bar (fetching candles unless the server is offline) and runs until
stop_paper_trading (or max_bars bars). Answers at once with the loop's job id: get_job shows its progress and the
orders of recent bars, get_pnl the account, trader://accounts/paper/equity its equity per bar."""


async def start_paper_trading(
    ctx: Context,
    strategy: Annotated[Literal["model", "confluence"], Field(description="model (needs model_id) or confluence.")
                        ] = "model",
    model_id: Annotated[Identifier | None, Field(description="A model from train_model / list_models.")] = None,
    symbols: Annotated[SymbolList | None, Field(description="Symbols to trade; default all the model trades.")] = None,
    min_confidence: Annotated[float, Field(ge=0, le=1, description="A model: BUY/SELL probability needed.")] = 0.5,
    threshold: Annotated[float, Field(gt=0, le=1, description="Confluence: score to act on.")] = 0.5,
    poll_seconds: Annotated[float, Field(ge=0.2, le=3600, description="Seconds between looks for a new bar.")] = 60,
    max_bars: Annotated[int | None, Field(ge=1, description="Stop after acting on this many bars.")] = None,
    take_profit_atr: Annotated[
        float, Field(ge=0, le=100, description="Take-profit in ATRs; 0 = none.")
    ] = DEFAULT_TAKE_PROFIT_ATR,
    max_hold_bars: Annotated[int, Field(ge=0, le=100_000, description="Holding limit in bars; 0 = none.")] = 24,
    allow_short: Annotated[bool, Field(description="SELL signals open shorts.")] = True,
    min_hold_bars: Annotated[
        int | None, Field(ge=0, le=100_000, description="An opposite signal exits only after this many bars; "
                                                        "default 0 for a model, 24 for confluence (as the backtest).")
    ] = None,
    cost_margin: CostMargin = DEFAULT_MARGIN,
    edge: EdgeChoice = "validated",
) -> JobView:
    import secrets

    from mcp_trader.trading.loop import LoopRequest, run_loop
    from mcp_trader.trading.signals import SignalRequest, decide

    home = home_of(ctx)
    async with tool_errors():
        try:
            signals = SignalRequest(strategy=strategy, model_id=model_id, symbols=symbols,
                                    min_confidence=min_confidence, threshold=threshold, cost_margin=cost_margin,
                                    capital=home.settings.paper_balance, edge=edge)
            request = LoopRequest(signals=signals, poll_seconds=poll_seconds, max_bars=max_bars,
                                  take_profit_atr=take_profit_atr, max_hold_bars=max_hold_bars,
                                  allow_short=allow_short, min_hold_bars=min_hold_bars)
        except ValidationError as error:
            raise ToolError(_first(error)) from None
        await decide(home, signals)  # an unknown model or symbol, or no candles: a tool error now, not a failed job
        loop_id = f"loop-{secrets.token_hex(5)}"

        async def work(control):
            return await run_loop(home, loop_id, request, control)

        jobs = await home.jobs()
        job = await jobs.submit("paper_trading", {"loop_id": loop_id, **request.model_dump(mode="json")}, work,
                                exclusive=False)
        return JobView.of(await jobs.wait(job.id, 0.5))


async def stop_paper_trading(
    ctx: Context, job_id: Annotated[Identifier, Field(description="The loop's job id from start_paper_trading.")]
) -> JobView:
    async with tool_errors():
        jobs = await home_of(ctx).jobs()
        if (await jobs.get(job_id)).kind != "paper_trading":
            raise ToolError(f"job_id: {job_id} is not a paper-trading loop; accepted: a job id from "
                            "start_paper_trading")
        return JobView.of(await jobs.cancel(job_id))


def _register_loop(server: MCPServer) -> None:
    server.add_tool(start_paper_trading, title="Start paper trading", description=LOOP,
                    annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=True))
    server.add_tool(
        stop_paper_trading, title="Stop paper trading",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True),
        description="Stop a paper-trading loop at its next step. Positions it opened stay open (close them with "
                    "place_order reduce_only, or keep them); get_pnl shows the account.",
    )
