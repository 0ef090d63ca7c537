"""Paper trading through an MCP client session: fills, limit orders, funding, the risk guard, idempotency, bad input.

The paper market's clock is the latest stored bar. A template home is collected once (the bundled real sample,
2024-08-25 up to 2024-09-20T00:00, inside the bundled funding history); each test trades on a copy of it, and moves
the clock on the way a person would: by calling collect_data again with a later end, which appends the sample's
next real bars. Expected prices come from the bundled sample itself, expected rules from venue_rules.json.
"""

import asyncio
import json
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from decimal import Decimal
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from mcp import Client
from mcp_calls import call, error_of

from mcp_trader.backtest.funding import history
from mcp_trader.config import Settings
from mcp_trader.data.sources.sample import load
from mcp_trader.home import Home
from mcp_trader.policy.limits import RiskLimits
from mcp_trader.server import build_server
from mcp_trader.trading.desks import desk_of

pytestmark = pytest.mark.anyio

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "ADA/USDT", "LINK/USDT", "LTC/USDT"]
START, CLOCK = "2024-08-25", "2024-09-20T00:00"  # the template stores bars that open before CLOCK
SLIP, TAKER, MAKER = 2.0 / 1e4, 0.00035, 0.0001
HOUR = pd.Timedelta(hours=1)


# --- the market, as the bundled sample and the venue rules say ----------------------------------------------------
def bars(base: str) -> pd.DataFrame:
    return load(base)


def close_before(base: str, clock: str) -> float:
    """The paper price at a clock: the close of the last bar that opened before it."""
    return float(bars(base).loc[pd.Timestamp(clock, tz="UTC") - HOUR, "close"])


def rules(base: str) -> dict[str, Decimal]:
    text = resources.files("mcp_trader.trading").joinpath("venue_rules.json").read_text()
    entry = next(e for e in json.loads(text)["symbols"] if e["baseAsset"] == base)
    filters = {f["filterType"]: f for f in entry["filters"]}
    return {"tick": Decimal(filters["PRICE_FILTER"]["tickSize"]), "step": Decimal(filters["LOT_SIZE"]["stepSize"]),
            "market_step": Decimal(filters["MARKET_LOT_SIZE"]["stepSize"]),
            "min_qty": Decimal(filters["LOT_SIZE"]["minQty"])}


def floor_to(value: float, step: Decimal) -> float:
    return float((Decimal(repr(value)) // step) * step)


def iso(clock: str) -> str:
    return pd.Timestamp(clock, tz="UTC").isoformat()


def later(clock: str, hours: int) -> str:
    return (pd.Timestamp(clock) + hours * HOUR).strftime("%Y-%m-%dT%H:%M")


# --- homes and servers ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("paper-template") / "home"

    async def collect() -> None:
        async with Client(build_server(Settings(home=home, offline=True))) as client:
            out = await call(client, "collect_data", {"symbols": SYMBOLS, "start": START, "end": CLOCK})
            assert {d["source"] for d in out["datasets"]} == {"sample"} and not out["synthetic"]

    asyncio.run(collect())
    return home


@pytest.fixture
def home_dir(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "home"))


@asynccontextmanager
async def serve(home_dir: Path, **settings) -> AsyncIterator[Client]:
    async with Client(build_server(Settings(home=home_dir, offline=True, **settings))) as client:
        yield client


@pytest.fixture
async def trader(home_dir: Path) -> AsyncIterator[Client]:
    async with serve(home_dir) as client:
        yield client


async def advance(client: Client, until: str, symbols: list[str] = SYMBOLS) -> None:
    """Move the paper clock to `until`: collect_data appends the sample's real bars that open before it."""
    out = await call(client, "collect_data", {"symbols": symbols, "start": START, "end": until})
    assert all(d["end"] == later(until, -1) + ":00Z" for d in out["datasets"]), out["datasets"]


async def order(client: Client, **args) -> dict:
    return await call(client, "place_order", args)


async def pnl(client: Client, **args) -> dict:
    return await call(client, "get_pnl", args)


async def orders(client: Client, **args) -> list[dict]:
    return (await call(client, "get_orders", args))["orders"]


def assert_balanced(account: dict) -> None:
    """cash + Σ qty × entry = start + realised − fees − funding; equity = cash + Σ qty × mark."""
    at_cost = sum(p["quantity"] * p["entry_price"] for p in account["positions"])
    expected = account["start_balance"] + account["realized_pnl"] - account["fees"] - account["funding"]
    assert account["cash"] + at_cost == pytest.approx(expected, abs=1e-6)
    assert account["ledger_balanced"] is True and abs(account["ledger_difference"]) < 1e-6
    marked = sum(p["quantity"] * p["mark_price"] for p in account["positions"])
    assert account["equity"] == pytest.approx(account["cash"] + marked, abs=1e-9)


def stored_account(home_dir: Path) -> dict:
    """The paper account row as committed to the ledger (read only, from outside the server)."""
    with closing(sqlite3.connect(f"file:{home_dir / 'state.sqlite'}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM accounts WHERE mode = 'paper'").fetchone()
    return dict(row) if row else {}


def figure(text: str, before: str) -> float:
    """The number a refusal prints right before `before` (e.g. '% of equity exceeds')."""
    found = re.search(rf"([\d,.]+) {re.escape(before)}", text)
    assert found, text
    return float(found.group(1).replace(",", ""))


# --- 1. paper fills and the account -------------------------------------------------------------------------------
async def test_a_market_buy_fills_at_the_close_plus_slippage_with_the_taker_fee(trader: Client):
    close = close_before("BTC", CLOCK)
    out = await order(trader, symbol="BTC", side="buy", quantity=0.0123456)
    step = rules("BTC")["market_step"]
    quantity = floor_to(0.0123456, step)
    assert quantity == 0.012
    filled = out["order"]
    assert out["outcome"] == "placed" and filled["status"] == "filled" and filled["symbol"] == "BTC/USDT:USDT"
    assert filled["quantity"] == filled["filled_quantity"] == quantity
    assert out["quote"]["price"] == close and out["quote"]["time"] == iso(CLOCK)
    price = close * (1 + SLIP)
    assert filled["average_price"] == pytest.approx(price, rel=1e-12)
    [fill] = out["fills"]
    assert fill["liquidity"] == "taker" and fill["time"] == iso(CLOCK)
    assert fill["fee"] == pytest.approx(quantity * price * TAKER, rel=1e-12) == filled["fees"]
    account = await pnl(trader)
    assert account["cash"] == pytest.approx(10_000 - quantity * price * (1 + TAKER), abs=1e-9)
    [position] = account["positions"]
    assert position["side"] == "long" and position["quantity"] == quantity and position["mark_price"] == close
    assert position["unrealized_pnl"] == pytest.approx(quantity * (close - price), abs=1e-9)
    assert_balanced(account)


async def test_a_market_sell_fills_at_the_close_minus_slippage(trader: Client):
    close = close_before("ETH", CLOCK)
    out = await order(trader, symbol="ETH/USDT:USDT", side="sell", quantity=0.5)
    price = close * (1 - SLIP)
    assert out["order"]["average_price"] == pytest.approx(price, rel=1e-12)
    assert out["fills"][0]["fee"] == pytest.approx(0.5 * price * TAKER, rel=1e-12)
    [position] = (await pnl(trader))["positions"]
    assert position["side"] == "short" and position["quantity"] == -0.5
    assert position["entry_price"] == pytest.approx(price, rel=1e-12)


async def test_a_notional_order_is_sized_at_the_latest_price_and_truncated_to_the_step(trader: Client):
    for base, notional in (("SOL", 1000.0), ("DOGE", 777.0), ("XRP", 250.0)):
        close = close_before(base, CLOCK)
        out = await order(trader, symbol=f"{base}/USDT", side="buy", notional=notional)
        expected = floor_to(notional / close, rules(base)["market_step"])
        assert out["order"]["quantity"] == pytest.approx(expected, abs=1e-12), base
        assert expected * close <= notional < (expected + float(rules(base)["market_step"])) * close
    price, _ = resting_buy("LINK", 3)  # a limit order is sized at its own price, to the limit step
    out = await order(trader, symbol="LINK", side="buy", notional=300, type="limit", price=price)
    assert out["order"]["status"] == "open"
    assert out["order"]["quantity"] == pytest.approx(floor_to(300 / price, rules("LINK")["step"]), abs=1e-12)


async def test_positions_average_partial_closes_book_pnl_and_a_flip_opens_the_rest(trader: Client):
    clocks = [CLOCK, later(CLOCK, 1), later(CLOCK, 2), later(CLOCK, 3)]
    price = [close_before("BTC", c) for c in clocks]
    buy = [p * (1 + SLIP) for p in price]
    sell = [p * (1 - SLIP) for p in price]

    await order(trader, symbol="BTC", side="buy", quantity=0.02)
    await advance(trader, clocks[1], ["BTC/USDT"])
    await order(trader, symbol="BTC", side="buy", quantity=0.01)
    entry = (0.02 * buy[0] + 0.01 * buy[1]) / 0.03
    [position] = (await pnl(trader))["positions"]
    assert position["quantity"] == pytest.approx(0.03) and position["entry_price"] == pytest.approx(entry, rel=1e-12)

    await advance(trader, clocks[2], ["BTC/USDT"])
    partial = await order(trader, symbol="BTC", side="sell", quantity=0.01)
    realized_1 = 0.01 * (sell[2] - entry)
    assert partial["fills"][0]["realized_pnl"] == pytest.approx(realized_1, abs=1e-9)
    [position] = (await pnl(trader))["positions"]
    assert position["quantity"] == pytest.approx(0.02) and position["entry_price"] == pytest.approx(entry, rel=1e-12)

    await advance(trader, clocks[3], ["BTC/USDT"])
    flip = await order(trader, symbol="BTC", side="sell", quantity=0.05)
    realized_2 = 0.02 * (sell[3] - entry)
    assert flip["fills"][0]["realized_pnl"] == pytest.approx(realized_2, abs=1e-9)
    assert flip["risk"]["reduces_only"] is False  # a flip opens new risk: it was checked as such

    account = await pnl(trader)
    [position] = account["positions"]
    assert position["side"] == "short" and position["quantity"] == pytest.approx(-0.03)
    assert position["entry_price"] == pytest.approx(sell[3], rel=1e-12)  # the rest opened at the flip's fill
    assert position["mark_price"] == price[3]
    assert position["unrealized_pnl"] == pytest.approx(-0.03 * (price[3] - sell[3]), abs=1e-9)
    fees = TAKER * (0.02 * buy[0] + 0.01 * buy[1] + 0.01 * sell[2] + 0.05 * sell[3])
    assert account["realized_pnl"] == pytest.approx(realized_1 + realized_2, abs=1e-9)
    assert account["fees"] == pytest.approx(fees, abs=1e-9)
    assert account["funding"] == 0  # no 8-hourly settlement passed
    assert account["total_pnl"] == pytest.approx(account["equity"] - 10_000, abs=1e-9)
    assert account["equity"] == pytest.approx(10_000 + realized_1 + realized_2 - fees + position["unrealized_pnl"],
                                              abs=1e-9)
    assert_balanced(account)

    # per_symbol since a time of the paper clock: the two sells only (fills at 02:00 and 03:00)
    for since in ("2024-09-20T01:30:00Z", "2024-09-20T03:30:00+02:00", "2024-09-19T20:30:00-05:00",
                  "2024-09-20T01:30:00"):  # a time without an offset is UTC
        [btc] = (await pnl(trader, since=since))["per_symbol"]
        assert btc["fills"] == 2, since
        assert btc["realized_pnl"] == pytest.approx(realized_1 + realized_2, abs=1e-9), since
        assert btc["fees"] == pytest.approx(TAKER * (0.01 * sell[2] + 0.05 * sell[3]), abs=1e-9), since
    [everything] = (await pnl(trader))["per_symbol"]
    assert everything["fills"] == 4 and everything["fees"] == pytest.approx(fees, abs=1e-9)


# --- 2. limit orders ----------------------------------------------------------------------------------------------
async def test_a_marketable_limit_fills_at_once_as_taker_no_worse_than_its_price(trader: Client):
    close = close_before("ETH", CLOCK)
    tick = rules("ETH")["tick"]
    high = floor_to(close * 1.01, tick)
    out = await order(trader, symbol="ETH", side="buy", quantity=0.4, type="limit", price=high)
    assert out["order"]["status"] == "filled" and out["fills"][0]["liquidity"] == "taker"
    assert out["order"]["average_price"] == pytest.approx(close * (1 + SLIP), rel=1e-12)
    # a sell limit just under the market: the slipped price would be worse than the limit, so it fills at the limit
    low = floor_to(close * (1 - SLIP / 4), tick)
    out = await order(trader, symbol="ETH", side="sell", quantity=0.4, type="limit", price=low)
    assert out["fills"][0]["liquidity"] == "taker"
    assert out["order"]["average_price"] == pytest.approx(max(close * (1 - SLIP), low), rel=1e-12) == low
    assert out["fills"][0]["fee"] == pytest.approx(0.4 * low * TAKER, rel=1e-12)


def resting_buy(base: str, hours: int) -> tuple[float, pd.Timestamp]:
    """A buy limit under the market that the next `hours` real bars trade through; the bar that meets it."""
    close = close_before(base, CLOCK)
    after = bars(base).loc[pd.Timestamp(CLOCK, tz="UTC"):].iloc[:hours]
    price = floor_to(float(close + after["low"].min()) / 2, rules(base)["tick"])
    assert after["low"].min() < price < close  # the sample makes this order rest, then fill
    return price, after.index[(after["low"] <= price).to_numpy().argmax()]


async def test_a_resting_limit_stays_open_and_cancel_order_cancels_it(trader: Client):
    price, _ = resting_buy("ETH", 3)
    out = await order(trader, symbol="ETH", side="buy", quantity=1, type="limit", price=price,
                      client_order_id="rest-1")
    assert out["order"]["status"] == "open" and out["fills"] == [] and out["order"]["price"] == price
    assert [o["client_order_id"] for o in await orders(trader, status=["open"])] == ["rest-1"]
    account = await pnl(trader)
    assert account["positions"] == [] and account["cash"] == 10_000
    canceled = await call(trader, "cancel_order", {"client_order_id": "rest-1"})
    assert canceled["status"] == "canceled" and canceled["filled_quantity"] == 0
    assert await orders(trader, status=["open"]) == []
    [listed] = await orders(trader)
    assert listed["status"] == "canceled"
    await advance(trader, later(CLOCK, 3), ["ETH/USDT"])  # bars that would have filled it: it stays canceled
    [listed] = await orders(trader)
    assert listed["status"] == "canceled" and (await pnl(trader))["cash"] == 10_000
    assert "canceled, not open" in await error_of(trader, "cancel_order", {"client_order_id": "rest-1"})


async def test_a_resting_limit_fills_as_maker_at_its_price_when_new_bars_trade_through(trader: Client):
    price, met = resting_buy("ETH", 3)
    await order(trader, symbol="ETH", side="buy", quantity=1.5, type="limit", price=price, client_order_id="maker-1")
    await advance(trader, later(CLOCK, 3), ["ETH/USDT"])
    [filled] = await orders(trader)
    assert filled["status"] == "filled" and filled["filled_quantity"] == 1.5
    assert filled["average_price"] == price
    assert filled["fees"] == pytest.approx(1.5 * price * MAKER, rel=1e-12)
    account = await pnl(trader)
    [position] = account["positions"]
    assert position["entry_price"] == price and position["quantity"] == 1.5
    assert position["opened_at"] == met.isoformat()
    assert position["mark_price"] == close_before("ETH", later(CLOCK, 3))
    assert account["fees"] == pytest.approx(1.5 * price * MAKER, rel=1e-12)
    assert_balanced(account)
    [eth] = (await pnl(trader, since=met.isoformat()))["per_symbol"]
    assert eth["fills"] == 1
    assert [o["client_order_id"] for o in await orders(trader, symbol="ETH", status=["filled"])] == ["maker-1"]
    assert await orders(trader, symbol="BTC") == []


async def test_cancelling_a_limit_that_new_bars_already_filled_answers_it_filled(trader: Client):
    price, _ = resting_buy("ETH", 3)
    await order(trader, symbol="ETH", side="buy", quantity=1, type="limit", price=price, client_order_id="late-1")
    await advance(trader, later(CLOCK, 3), ["ETH/USDT"])
    # the bars traded through it before the cancel arrived: it is filled, not canceled
    text = await error_of(trader, "cancel_order", {"client_order_id": "late-1"})
    assert "client_order_id" in text and "filled" in text
    [listed] = await orders(trader)
    assert listed["status"] == "filled" and listed["average_price"] == price
    [position] = (await pnl(trader))["positions"]
    assert position["quantity"] == 1


# --- 3. funding ---------------------------------------------------------------------------------------------------
async def test_positions_held_across_a_settlement_pay_the_bundled_funding(trader: Client):
    await order(trader, symbol="BTC", side="buy", quantity=0.05)
    await order(trader, symbol="ETH", side="sell", quantity=1)
    await advance(trader, later(CLOCK, 9), ["BTC/USDT", "ETH/USDT"])  # bars to 08:00: the 08:00 settlement passed
    settlement = pd.Timestamp("2024-09-20T08:00", tz="UTC")
    ms = settlement.value // 1_000_000
    expected = {
        "BTC/USDT:USDT": 0.05 * float(bars("BTC").loc[settlement, "open"]) * float(history("BTC")[ms]),
        "ETH/USDT:USDT": -1 * float(bars("ETH").loc[settlement, "open"]) * float(history("ETH")[ms]),
    }
    account = await pnl(trader)
    assert account["funding"] == pytest.approx(sum(expected.values()), abs=1e-12)
    for position in account["positions"]:
        assert position["funding"] == pytest.approx(expected[position["symbol"]], abs=1e-12)
    per_symbol = {s["symbol"]: s["funding"] for s in account["per_symbol"]}
    assert per_symbol == pytest.approx(expected, abs=1e-12)
    assert_balanced(account)
    again = await pnl(trader)  # settled once, however often it is asked
    assert again["funding"] == account["funding"] and again["cash"] == account["cash"]

    await advance(trader, later(CLOCK, 17), ["BTC/USDT", "ETH/USDT"])  # and the 16:00 one
    second = settlement + pd.Timedelta(hours=8)
    ms2 = second.value // 1_000_000
    expected["BTC/USDT:USDT"] += 0.05 * float(bars("BTC").loc[second, "open"]) * float(history("BTC")[ms2])
    account = await pnl(trader)
    assert {p["symbol"]: p["funding"] for p in account["positions"]}["BTC/USDT:USDT"] == pytest.approx(
        expected["BTC/USDT:USDT"], abs=1e-12)
    assert_balanced(account)
    # per_symbol since the first settlement's end counts only the second
    since = {s["symbol"]: s["funding"] for s in (await pnl(trader, since="2024-09-20T09:00:00Z"))["per_symbol"]}
    assert since["BTC/USDT:USDT"] == pytest.approx(
        0.05 * float(bars("BTC").loc[second, "open"]) * float(history("BTC")[ms2]), abs=1e-12)


async def test_funding_is_charged_on_what_was_held_at_each_settlement(trader: Client):
    """A resting limit that newer bars fill after a settlement does not pay (or receive) that settlement."""
    await order(trader, symbol="XRP", side="buy", quantity=1000)
    price = 0.5765  # the sample's XRP first trades at or under it in the 17:00 bar, after the 16:00 settlement
    first = bars("XRP").loc[pd.Timestamp(CLOCK, tz="UTC"):][lambda f: f["low"] <= price].index[0]
    assert first == pd.Timestamp("2024-09-20T17:00", tz="UTC")
    await order(trader, symbol="XRP", side="buy", quantity=1000, type="limit", price=price)
    await advance(trader, later(CLOCK, 18), ["XRP/USDT"])  # one collection brings the fill and both settlements
    expected = 0.0
    for hour in (8, 16):
        when = pd.Timestamp(CLOCK, tz="UTC") + hour * HOUR
        expected += 1000 * float(bars("XRP").loc[when, "open"]) * float(history("XRP")[when.value // 1_000_000])
    account = await pnl(trader)
    [position] = account["positions"]
    assert position["quantity"] == 2000 and position["entry_price"] == pytest.approx(
        (1000 * close_before("XRP", CLOCK) * (1 + SLIP) + 1000 * price) / 2000, rel=1e-12)
    assert account["funding"] == pytest.approx(expected, abs=1e-12)
    assert_balanced(account)


# --- 4. the risk guard --------------------------------------------------------------------------------------------
async def test_max_order_notional_is_refused_with_the_excess_and_no_argument_raises_it(trader: Client):
    args = {"symbol": "BTC", "side": "buy", "notional": 6000}
    text = await error_of(trader, "place_order", args)
    quantity = floor_to(6000 / close_before("BTC", CLOCK), rules("BTC")["market_step"])
    notional = quantity * close_before("BTC", CLOCK)
    assert "max_order_notional" in text and "exceeds the limit 5,000 USDT" in text
    assert figure(text, "USDT exceeds") == pytest.approx(notional, abs=0.01)
    assert f"by {notional - 5000:,.2f} USDT" in text
    sneaky = {**args, "max_order_notional": 1e9, "risk_per_trade": 1, "max_leverage": 20, "max_positions": 50,
              "daily_loss_limit": 0.99, "limits": {"max_order_notional": 1e9}}
    refused = await error_of(trader, "place_order", sneaky)  # a limit-like argument is refused, never applied
    assert "daily_loss_limit: is not an argument of place_order" in refused and "notional" in refused
    assert await error_of(trader, "place_order", args) == text
    tools = {t.name: t for t in (await trader.list_tools()).tools}
    for name in ("place_order", "cancel_order", "get_orders", "get_pnl"):
        assert not set(tools[name].input_schema["properties"]) & {*RiskLimits.model_fields, "limits"}, name
    assert await orders(trader) == []


async def test_max_positions_counts_open_positions_and_working_orders(trader: Client):
    for base in ("BTC", "ETH", "SOL", "XRP"):
        await order(trader, symbol=base, side="buy", notional=500)
    price, _ = resting_buy("ADA", 3)
    resting = await order(trader, symbol="ADA", side="buy", notional=500, type="limit", price=price)
    assert resting["order"]["status"] == "open" and resting["risk"]["open_positions_after"] == 5
    text = await error_of(trader, "place_order", {"symbol": "DOGE", "side": "buy", "notional": 500})
    assert "max_positions" in text and "6 positions exceeds the limit 5 positions by 1 positions" in text
    added = await order(trader, symbol="BTC", side="buy", notional=500)  # growing a held one opens no new position
    assert added["risk"]["open_positions_after"] == 5
    await call(trader, "cancel_order", {"client_order_id": resting["order"]["client_order_id"]})
    fifth = await order(trader, symbol="DOGE", side="buy", notional=500)
    assert fifth["risk"]["open_positions_after"] == 5
    assert "max_positions" in await error_of(trader, "place_order", {"symbol": "LINK", "side": "sell", "notional": 50})
    assert len((await pnl(trader))["positions"]) == 5


async def test_max_leverage_from_the_settings_names_the_gross_and_the_excess(home_dir: Path):
    async with serve(home_dir, limits={"max_leverage": 0.5}) as client:
        first = await order(client, symbol="BTC", side="buy", notional=3000)
        assert first["risk"]["limits"]["max_leverage"] == 0.5
        text = await error_of(client, "place_order", {"symbol": "ETH", "side": "sell", "notional": 2500})
        assert "max_leverage" in text and "× equity exceeds the limit 0.5 × equity by" in text
        btc, eth = close_before("BTC", CLOCK), close_before("ETH", CLOCK)
        held, paid = first["order"]["quantity"], first["order"]["average_price"]
        equity = 10_000 + held * (btc - paid) - first["order"]["fees"]  # marked at the close after the fill
        gross = held * btc + floor_to(2500 / eth, rules("ETH")["market_step"]) * eth
        assert figure(text, "× equity exceeds") == pytest.approx(gross / equity, rel=1e-5)
        assert f"gross notional {gross:,.2f} USDT" in text
        assert len(await orders(client)) == 1


async def test_risk_per_trade_measures_the_atr_stop(home_dir: Path):
    async with serve(home_dir, limits={"risk_per_trade": 0.0005}) as client:
        text = await error_of(client, "place_order", {"symbol": "BTC", "side": "buy", "quantity": 0.03})
        frame = bars("BTC").loc[: pd.Timestamp(CLOCK, tz="UTC") - HOUR].iloc[-500:]
        atr = talib.ATR(*(frame[c].to_numpy(np.float64) for c in ("high", "low", "close")), 14)[-1]
        risk = 0.03 * Settings().limits.stop_atr * atr  # stop_atr × ATR(14) on the added quantity
        assert "risk_per_trade" in text and f"would lose {risk:,.2f} USDT" in text
        assert figure(text, "% of equity exceeds") == pytest.approx(100 * risk / 10_000, rel=1e-4)
        assert "exceeds the limit 0.05 % of equity by" in text
        small = await order(client, symbol="BTC", side="buy", quantity=0.001)  # a small one fits
        assert small["risk"]["risk_fraction"] < 0.0005
        assert small["risk"]["risk"] == pytest.approx(0.001 * Settings().limits.stop_atr * atr, rel=1e-6)


async def test_an_order_that_only_reduces_passes_over_every_limit(home_dir: Path):
    async with serve(home_dir) as client:
        await order(client, symbol="BTC", side="buy", quantity=0.06)
        await order(client, symbol="ETH", side="sell", quantity=1.5)
    tight = {"max_order_notional": 10, "max_positions": 1, "max_leverage": 0.01, "risk_per_trade": 0.00001}
    async with serve(home_dir, limits=tight) as client:
        assert "max_order_notional" in await error_of(client, "place_order",
                                                      {"symbol": "BTC", "side": "buy", "quantity": 0.001})
        out = await order(client, symbol="BTC", side="sell", quantity=0.03)  # half, not even reduce_only
        assert out["risk"]["reduces_only"] is True and out["order"]["status"] == "filled"
        assert out["risk"]["notional"] > 10 and out["risk"]["leverage_after"] > 0.01
        await order(client, symbol="BTC", side="sell", quantity=0.03, reduce_only=True)
        await order(client, symbol="ETH", side="buy", quantity=1.5, reduce_only=True)
        account = await pnl(client)
        assert account["positions"] == [] and account["limits"] == {**account["limits"], **tight}
        assert_balanced(account)
        assert "max_order_notional" in await error_of(client, "place_order",
                                                      {"symbol": "ETH", "side": "sell", "quantity": 0.01})


async def test_a_working_order_is_no_position_to_reduce(trader: Client):
    """Working orders count towards the limits as if filled, but only a held position can be reduced."""
    price, _ = resting_buy("ETH", 3)
    await order(trader, symbol="ETH", side="buy", quantity=1, type="limit", price=price)
    text = await error_of(trader, "place_order", {"symbol": "ETH", "side": "sell", "quantity": 1, "reduce_only": True})
    assert "reduce_only" in text
    short = await order(trader, symbol="ETH", side="sell", quantity=1)  # opens a short: new risk, checked as such
    assert short["risk"]["reduces_only"] is False and short["risk"]["risk"] > 0
    [position] = (await pnl(trader))["positions"]
    assert position["quantity"] == -1
    closing = await order(trader, symbol="ETH", side="buy", quantity=1, reduce_only=True)
    # it reduces the held short, but with the working buy it could leave a long: checked as new risk, and allowed
    assert closing["order"]["status"] == "filled" and closing["risk"]["reduces_only"] is False
    assert (await pnl(trader))["positions"] == []


async def test_a_resting_reduce_only_order_never_opens_a_position(trader: Client):
    """A reduce_only take-profit whose position was closed meanwhile does not fill into a new one."""
    close = close_before("ETH", CLOCK)
    target = floor_to(close * 1.01, rules("ETH")["tick"])
    assert bars("ETH").loc[pd.Timestamp(CLOCK, tz="UTC"):].iloc[:4]["high"].max() > target  # met within 4 bars
    await order(trader, symbol="ETH", side="buy", quantity=1)
    take = await order(trader, symbol="ETH", side="sell", quantity=1, type="limit", price=target, reduce_only=True,
                       client_order_id="take-1")
    assert take["order"]["status"] == "open"
    await order(trader, symbol="ETH", side="sell", quantity=1)  # closed by hand first
    await advance(trader, later(CLOCK, 4), ["ETH/USDT"])
    account = await pnl(trader)
    assert account["positions"] == []
    [listed] = [o for o in await orders(trader) if o["client_order_id"] == "take-1"]
    assert listed["status"] in ("canceled", "expired") and listed["filled_quantity"] == 0
    assert "reduce" in listed["reason"]
    assert_balanced(account)


async def test_the_daily_loss_stop_halts_new_risk_until_a_person_resets_it(home_dir: Path):
    limit = 0.001
    async with serve(home_dir, limits={"daily_loss_limit": limit}) as client:
        hour = later(CLOCK, 1)
        # the sample's ETH fell in the hour after the clock: a long loses
        assert close_before("ETH", hour) < close_before("ETH", CLOCK) * (1 - 0.005)
        await order(client, symbol="ETH", side="buy", quantity=1.2)
        await order(client, symbol="BTC", side="buy", quantity=0.001)
        await advance(client, hour, ["ETH/USDT"])
        text = await error_of(client, "place_order", {"symbol": "SOL", "side": "buy", "notional": 100})
        assert "daily_loss_limit" in text and "exceeds the limit 0.1 %" in text and " by " in text
        assert figure(text, "% exceeds") > 100 * limit
        halted = stored_account(home_dir)["halted_until"]  # the refusal's halt was recorded, not only told
        assert halted is not None
        account = await pnl(client)
        assert account["halted_until"] == halted and "daily loss limit" in account["halt_reason"]
        assert 1 - account["equity"] / account["day_start_equity"] >= limit
        # reducing still passes: reduce_only, then a plain closing order
        assert (await order(client, symbol="ETH", side="sell", quantity=0.6, reduce_only=True))["order"][
            "status"] == "filled"
        assert (await order(client, symbol="ETH", side="sell", quantity=0.6))["risk"]["reduces_only"] is True
        assert "daily_loss_limit" in await error_of(client, "place_order",
                                                    {"symbol": "BTC", "side": "buy", "quantity": 0.001})
        assert "daily_loss_limit" in await error_of(client, "place_order",  # flipping adds risk too
                                                    {"symbol": "BTC", "side": "sell", "quantity": 0.002})

        # a person lifts it (the mcp-trader reset-daily-stop command); no tool can
        tools = {t.name for t in (await client.list_tools()).tools}
        assert not any("reset" in name or "halt" in name for name in tools)
        person = Home(Settings(home=home_dir, offline=True, limits={"daily_loss_limit": limit}))
        try:
            lifted = await (await desk_of(person)).reset_daily_stop("paper")
        finally:
            await person.close()
        account = await pnl(client)
        assert account["halted_until"] is None and account["day_start_equity"] == pytest.approx(account["equity"])
        assert lifted.equity == pytest.approx(account["equity"])
        assert (await order(client, symbol="SOL", side="buy", notional=100))["order"]["status"] == "filled"
        assert_balanced(await pnl(client))


# --- 5. idempotency -----------------------------------------------------------------------------------------------
async def test_the_same_client_order_id_is_answered_once(home_dir: Path):
    args = {"symbol": "BTC", "side": "buy", "quantity": 0.01, "client_order_id": "retry-1"}
    async with serve(home_dir) as client:
        first = await order(client, **args)
        again = await order(client, **{**args, "symbol": "BTC/USDT:USDT"})  # the same order, however spelled
        assert first["outcome"] == "placed" and again["outcome"] == "duplicate"
        assert again["order"]["client_order_id"] == "retry-1" and again["order"]["status"] == "filled"
        assert again["fills"] == [] and "already exists" in again["note"]
        text = await error_of(client, "place_order", {**args, "quantity": 0.02})
        assert "client_order_id" in text and "retry-1" in text and "different order" in text
        assert "client_order_id" in await error_of(client, "place_order", {**args, "side": "sell"})
    async with serve(home_dir) as client:  # after a restart too
        assert (await order(client, **args))["outcome"] == "duplicate"
        [listed] = await orders(client)
        account = await pnl(client)
        [btc] = account["per_symbol"]
        assert listed["client_order_id"] == "retry-1" and btc["fills"] == 1
        assert account["positions"][0]["quantity"] == 0.01
        assert account["fees"] == pytest.approx(first["order"]["fees"])

        # retries racing each other: one order, one fill
        race = {"symbol": "ETH", "side": "sell", "quantity": 0.3, "client_order_id": "race-1"}
        answers = await asyncio.gather(*(order(client, **race) for _ in range(4)))
        assert sorted(a["outcome"] for a in answers) == ["duplicate"] * 3 + ["placed"]
        assert [o["client_order_id"] for o in await orders(client)].count("race-1") == 1
        account = await pnl(client)
        assert {s["symbol"]: s["fills"] for s in account["per_symbol"]} == {"BTC/USDT:USDT": 1, "ETH/USDT:USDT": 1}
        assert {p["symbol"]: p["quantity"] for p in account["positions"]}["ETH/USDT:USDT"] == -0.3
        assert_balanced(account)


# --- 6 and 7. bad input: a clear error naming the field, the server keeps serving, nothing is written ---------------
# (arguments, how the error begins after the tool's prefix: the field it is about, what else it must name)
BAD_ORDERS = [
    ({"symbol": "FOO", "side": "buy", "quantity": 1}, "symbol:", ("collect_data",)),
    ({"symbol": "XTZ", "side": "buy", "quantity": 1}, "symbol:", ("XTZ",)),  # an Aster market, but not collected
    ({"symbol": "ETH/BTC", "side": "buy", "quantity": 1}, "symbol:", ("USDT",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 0}, "quantity:", ("greater than 0",)),
    ({"symbol": "BTC", "side": "buy", "quantity": -0.5}, "quantity:", ("greater than 0",)),
    ({"symbol": "BTC", "side": "buy", "notional": -10}, "notional:", ("greater than 0",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "notional": 500}, "order:", ("quantity", "notional")),
    ({"symbol": "BTC", "side": "buy"}, "order:", ("quantity", "notional")),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "type": "limit"}, "order:", ("needs price",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "price": 60_000}, "order:", ("no price", "limit")),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "type": "limit", "price": 60_000.05}, "price:",
     ("tick 0.1", "60000")),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.0004}, "quantity:", ("minimum 0.001",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 200}, "quantity:", ("maximum 120",)),  # MARKET_LOT_SIZE maxQty
    ({"symbol": "DOGE", "side": "buy", "quantity": 20}, "quantity:", ("minimum 5 USDT",)),  # ≈ 2 USDT
    ({"symbol": "DOGE", "side": "buy", "notional": 3}, "notional:", ("minimum 5 USDT",)),
    ({"symbol": "BTC", "side": "buy", "notional": 3}, "notional:", ("minimum 0.001",)),
    ({"symbol": "BTC", "side": "sell", "quantity": 0.01, "reduce_only": True}, "reduce_only:", ("position",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "client_order_id": "has spaces"}, "client_order_id:", ()),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "client_order_id": "x" * 37}, "client_order_id:", ()),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "confirm_token": "abc"}, "confirm_token:", ("live",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "mode": "live"}, "mode:", ("not enabled",)),
    ({"symbol": "BTC", "side": "buy", "quantity": 0.01, "mode": "live", "confirm_token": "abc"}, "mode:", ()),
    ({"symbol": "BTC", "side": "hold", "quantity": 0.01}, "", ("side", "'buy' or 'sell'")),
    ({"symbol": "BTC", "side": "buy", "notional": 6000, "client_order_id": "too-big"},
     "risk limit max_order_notional:", ("exceeds the limit 5,000 USDT by",)),
]


async def test_bad_orders_are_clear_errors_and_leave_the_ledger_as_it_was(trader: Client, home_dir: Path):
    for args, lead, words in BAD_ORDERS:
        text = (await error_of(trader, "place_order", args)).removeprefix("Error executing tool place_order: ")
        assert text.startswith(lead) and all(w in text for w in words), (args, text)
    assert await orders(trader) == []
    account = await pnl(trader)
    assert account["cash"] == 10_000 and account["positions"] == [] and account["per_symbol"] == []
    assert stored_account(home_dir).get("cash", 10_000) == 10_000

    # the server keeps serving, and an id refused before is free to use
    placed = await order(trader, symbol="BTC", side="buy", quantity=0.01, client_order_id="too-big")
    assert placed["outcome"] == "placed"
    [listed] = await orders(trader)
    assert listed["client_order_id"] == "too-big"
    created = pd.Timestamp(listed["created_at"])
    for zone in ("+05:00", "-07:00"):  # get_orders' since is a time, whatever the offset it is written in
        before = (created - pd.Timedelta(minutes=1)).tz_convert(zone).isoformat()
        after = (created + pd.Timedelta(minutes=1)).tz_convert(zone).isoformat()
        assert len(await orders(trader, since=before)) == 1 and await orders(trader, since=after) == [], zone
    text = await error_of(trader, "place_order", {"symbol": "BTC", "side": "sell", "quantity": 0.02,
                                                  "reduce_only": True})
    assert "reduce_only" in text and "at most 0.01" in text

    for args, field in ((({"client_order_id": "no-such-order"}), "client_order_id"),
                        ({"client_order_id": "too-big"}, "client_order_id"),  # filled
                        ({"client_order_id": "too-big", "mode": "live"}, "mode")):
        text = await error_of(trader, "cancel_order", args)
        assert field in text, (args, text)
    assert "filled, not open" in await error_of(trader, "cancel_order", {"client_order_id": "too-big"})
    assert "mode" in await error_of(trader, "get_pnl", {"mode": "live"})
    assert "mode" in await error_of(trader, "get_orders", {"mode": "live"})
    [listed] = await orders(trader)
    assert listed["status"] == "filled"
    assert_balanced(await pnl(trader))



async def test_limit_prices_outside_the_venues_band_are_refused(trader: Client):
    close = close_before("BTC", CLOCK)
    far_buy = round(close * 1.2, 1)
    text = await error_of(trader, "place_order", {"symbol": "BTC", "side": "buy", "type": "limit", "quantity": 0.01,
                                                   "price": far_buy})
    assert text.startswith("Error executing tool place_order: price:") and "1.15 ×" in text and "at most" in text
    far_sell = round(close * 0.8, 1)
    text = await error_of(trader, "place_order", {"symbol": "BTC", "side": "sell", "type": "limit",
                                                   "quantity": 0.01, "price": far_sell})
    assert "price:" in text and "0.85 ×" in text and "at least" in text
    assert await orders(trader) == []


async def test_get_pnl_says_where_paper_funding_cannot_be_charged(client: Client):
    await call(client, "collect_data", {"symbols": ["BTC/USDT", "XTZ/USDT"], "days": 10})
    for base in ("BTC", "XTZ"):
        await call(client, "place_order", {"symbol": base, "side": "buy", "notional": 100})
    notes = (await call(client, "get_pnl", {}))["notes"]
    assert notes == ["XTZ/USDT:USDT: no funding history is bundled for it, so paper charges it no funding "
                     "(collect_data fetches the venue's)"]
