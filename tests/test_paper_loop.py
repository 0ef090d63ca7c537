"""The paper-trading loop through MCP: on a bar it enters what the backtest engine enters at that bar, with the
engine's sizes; it stops on request; a bar acted on again (a restart) answers its orders instead of repeating them."""

import csv
import io
import math
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_calls import call, error_of, read_text

from mcp_trader.config import Settings
from mcp_trader.server import build_server
from mcp_trader.trading.rules import bundled_rules

pytestmark = pytest.mark.anyio
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOT/USDT"]
BAR = "2024-09-19T23:00:00+00:00"  # the latest stored bar of the loop's home: the bar it decides at
LOOP = {"strategy": "confluence", "symbols": SYMBOLS, "threshold": 0.3, "poll_seconds": 0.2}


def _settings(path: Path) -> Settings:
    return Settings(home=path, offline=True)  # the default limits: the backtest sizes within them too


async def _loop_home(tmp_path: Path) -> Client:
    client = Client(build_server(_settings(tmp_path / "loop")))
    return client


async def _engine_entries(tmp_path: Path) -> list[dict]:
    async with Client(build_server(_settings(tmp_path / "backtest"))) as client:
        run = await call(client, "run_backtest", {**{k: LOOP[k] for k in ("strategy", "symbols", "threshold")},
                                                  "start": BAR[:16], "end": "2024-09-21T00:00", "wait_seconds": 120})
        run_id = (run.get("result") or run)["run_id"]
        rows = list(csv.DictReader(io.StringIO(await read_text(client, f"trader://backtests/{run_id}/trades"))))
    return [r for r in rows if r["decision_time"] == BAR]


async def test_loop_enters_what_the_backtest_enters_at_the_bar(tmp_path: Path):
    expected = await _engine_entries(tmp_path)
    assert expected, "the fixture bar should have entries"
    async with await _loop_home(tmp_path) as client:
        await call(client, "collect_data", {"symbols": SYMBOLS, "start": "2024-04-20", "end": "2024-09-20T00:00"})
        started = await call(client, "start_paper_trading", {**LOOP, "max_bars": 1})
        job = await call(client, "get_job", {"job_id": started["job_id"], "wait_seconds": 60})
        assert job["status"] == "succeeded", job
        assert job["result"]["last_bar"] == BAR and job["result"]["bars"] == 1
        orders = (await call(client, "get_orders", {}))["orders"]
    placed = {o["symbol"]: o for o in orders}
    assert set(placed) == {r["symbol"] for r in expected}
    for row in expected:
        order = placed[row["symbol"]]
        assert order["side"] == ("buy" if row["side"] == "long" else "sell") and order["status"] == "filled"
        step = bundled_rules()[row["symbol"]].step_size
        wanted = float(row["quantity"]) * 0.999  # the loop's margin against the guard (loop.SIZE_MARGIN)
        assert wanted - step - 1e-9 <= order["quantity"] <= wanted + 1e-9, (row, order)


def _later(time: str, hours: int) -> str:
    return (datetime.fromisoformat(time) + timedelta(hours=hours)).isoformat()


def _engine_actions(rows: list[dict], bars: list[str]) -> dict[str, tuple[dict, dict]]:
    """Per bar: the engine's entries decided at its close {symbol: side}, and its exits {symbol: reason} — signal and
    time exits decided at the close, stops and take-profits met inside the bar (the loop sees them at that close)."""
    out: dict[str, tuple[dict, dict]] = {bar: ({}, {}) for bar in bars}
    for r in rows:
        if r["decision_time"] in out:
            out[r["decision_time"]][0][r["symbol"]] = "buy" if r["side"] == "long" else "sell"
        when = r["exit_time"] if r["exit_reason"] in ("stop", "take_profit") else r["exit_decision_time"]
        if when in out and r["exit_reason"] != "end":
            out[when][1][r["symbol"]] = r["exit_reason"]
    return out


async def test_loop_trades_what_the_backtest_trades_bar_by_bar_entries_and_exits(tmp_path: Path):
    """Twelve bars, the default limits: at every bar the loop enters the symbols and sides the engine enters there
    and exits what the engine exits, for the same reason (a short holding limit, so that exits come)."""
    bars = [_later(BAR, i) for i in range(12)]
    holds = {"max_hold_bars": 6, "min_hold_bars": 4}
    async with Client(build_server(_settings(tmp_path / "backtest"))) as client:
        run = await call(client, "run_backtest", {**{k: LOOP[k] for k in ("strategy", "symbols", "threshold")},
                                                  "risk": holds, "start": BAR[:16], "end": _later(BAR, 14)[:16],
                                                  "wait_seconds": 120})
        run_id = (run.get("result") or run)["run_id"]
        rows = list(csv.DictReader(io.StringIO(await read_text(client, f"trader://backtests/{run_id}/trades"))))
    engine = _engine_actions(rows, bars)
    async with await _loop_home(tmp_path) as client:
        await call(client, "collect_data", {"symbols": SYMBOLS, "start": "2024-04-20", "end": "2024-09-20T00:00"})
        started = await call(client, "start_paper_trading", {**LOOP, **holds, "max_bars": len(bars)})
        for i in range(1, len(bars)):
            await _wait_for_bars(client, started["job_id"], i)
            # the paper clock moves on: bars[i] becomes the latest stored bar
            await call(client, "collect_data", {"symbols": SYMBOLS, "start": "2024-04-20",
                                                "end": _later(bars[i], 1)[:16]})
        job = await call(client, "get_job", {"job_id": started["job_id"], "wait_seconds": 60})
        assert job["status"] == "succeeded", job
        sides = {o["client_order_id"]: o["side"] for o in (await call(client, "get_orders", {"limit": 500}))["orders"]}
    loop = {a["bar"]: a for a in job["result"]["recent"]}
    assert list(loop) == bars
    for bar in bars:
        entries = {_perp(o): sides[o] for o in loop[bar]["orders"] if o.endswith("-e")}
        assert not loop[bar]["refused"], (bar, loop[bar]["refused"])
        assert (entries, loop[bar]["exits"]) == engine[bar], bar
    exits = [reason for _, out in engine.values() for reason in out.values()]
    assert len(exits) >= 3 and "time" in exits, exits  # the comparison covered exits, not only entries


async def _wait_for_bars(client: Client, job_id: str, bars: int) -> None:
    for _ in range(600):
        job = await call(client, "get_job", {"job_id": job_id})
        if f"{bars} bars acted on" in job["message"] or job["status"] != "running":
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"the loop did not act on {bars} bars: {job['message']}")


def _perp(client_order_id: str) -> str:
    return f"{client_order_id.split('-')[-2]}/USDT:USDT"


async def test_loop_runs_until_stopped_and_a_bar_is_never_traded_twice(tmp_path: Path):
    async with await _loop_home(tmp_path) as client:
        await call(client, "collect_data", {"symbols": SYMBOLS, "start": "2024-04-20", "end": "2024-09-20T00:00"})
        started = await call(client, "start_paper_trading", LOOP)
        running = await call(client, "get_job", {"job_id": started["job_id"], "wait_seconds": 2})
        assert running["status"] == "running" and "1 bars acted on" in running["message"]
        first = (await call(client, "get_orders", {}))["orders"]
        stopped = await call(client, "stop_paper_trading", {"job_id": started["job_id"]})
        assert stopped["status"] == "cancelled"
        # A second loop over the same bar is a different loop (new ids); the first loop's orders stay single.
        again = (await call(client, "get_orders", {}))["orders"]
        assert [o["client_order_id"] for o in again] == [o["client_order_id"] for o in first]
        pnl = await call(client, "get_pnl", {})
        assert pnl["ledger_balanced"] and len(pnl["positions"]) == len(first)
        equity = await read_text(client, "trader://accounts/paper/equity")
        assert '"equity"' in equity


async def test_a_bar_acted_on_again_answers_its_orders(tmp_path: Path):
    from mcp_trader.home import Home
    from mcp_trader.trading.loop import LoopRequest, act_on_bar
    from mcp_trader.trading.signals import SignalRequest, decide

    async with await _loop_home(tmp_path) as client:
        await call(client, "collect_data", {"symbols": SYMBOLS, "start": "2024-04-20", "end": "2024-09-20T00:00"})
    home = Home(_settings(tmp_path / "loop"))
    try:
        request = LoopRequest(signals=SignalRequest(strategy="confluence", symbols=SYMBOLS, threshold=0.3))
        picked = await decide(home, request.signals)
        first = await act_on_bar(home, "loop-replayed", request, picked)
        assert first.orders
        assert (await act_on_bar(home, "loop-replayed", request, picked)).orders == []  # held now: nothing new
        db = await home.db()
        async with db.transaction() as conn:  # as if the server died after the fills, before the loop's own record
            await conn.execute("DELETE FROM loop_positions")
        second = await act_on_bar(home, "loop-replayed", request, picked)
        assert second.orders == first.orders  # the same client ids: answered as duplicates, not sent again
        fills = await db.fetch_all("SELECT client_order_id FROM fills ORDER BY client_order_id")
        assert [f["client_order_id"] for f in fills] == sorted(first.orders)
        held = await db.fetch_all("SELECT symbol FROM loop_positions")
        assert len(held) == len(first.orders)
    finally:
        await home.close()


async def test_start_refuses_bad_input(tmp_path: Path):
    async with await _loop_home(tmp_path) as client:
        text = await error_of(client, "start_paper_trading", {"strategy": "model", "model_id": "no-such-model"})
        assert "no-such-model" in text
        text = await error_of(client, "start_paper_trading", LOOP)  # no candles stored yet
        assert "collect_data" in text
        text = await error_of(client, "stop_paper_trading", {"job_id": "job-nope"})
        assert "job-nope" in text
        assert math.isfinite((await call(client, "get_pnl", {}))["equity"])


def test_while_the_daily_loss_stop_holds_the_loop_only_exits():
    """As the engine: a halted account enters nothing new (the guard would refuse it), and positions still end."""
    from mcp_trader.policy.rules import Policy
    from mcp_trader.trading.loop import BarSignal, Held, decide_bar

    bar = {s: BarSignal(symbol=s, signal=1, strength=0.5, close=100.0, high=101.0, low=99.0, atr=1.0)
           for s in ("BTC/USDT:USDT", "ETH/USDT:USDT")}
    held = {"SOL/USDT:USDT": Held(symbol="SOL/USDT:USDT", side=1, quantity=2.0, stop=90.0, target=None, bars_held=5)}
    policy = Policy(max_hold_bars=6)
    exits, entries = decide_bar(policy, bar, held, {"SOL/USDT:USDT": 95.0}, {}, 10_000.0)
    assert {e.symbol for e in entries} == set(bar) and exits == {}  # SOL has no bar: nothing decides its exit
    bar["SOL/USDT:USDT"] = BarSignal(symbol="SOL/USDT:USDT", signal=0, strength=0.0, close=95.0, high=96.0, low=94.0,
                                     atr=1.0)
    exits, entries = decide_bar(policy, bar, held, {}, {}, 10_000.0, halted=True)
    assert entries == [] and exits == {"SOL/USDT:USDT": "time"}
