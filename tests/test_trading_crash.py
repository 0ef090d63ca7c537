"""Crash safety of paper trading: the real server process is killed with SIGKILL at random moments (seeded),
mid-call included, restarted on the same home, and the order stream goes on. A driver that has lost an answer
looks the order up and resends it, with the same client order id, only when the ledger has no such order or says
it was never placed. At the end every intended order is in the ledger exactly once, each filled one with exactly
one fill (counted from SQLite directly), positions equal the signed sum of fills, and the ledger balances both by
get_pnl and by a recomputation from the fills table.

The ledger audit here (`audit`) is shared with test_trading_concurrency.py.
"""

import math
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from test_server_process import command

SEED = 20240930
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
STEP = {"BTC/USDT": 0.001, "ETH/USDT": 0.001, "SOL/USDT": 0.01}
TICK = {"BTC/USDT": 0.1, "ETH/USDT": 0.01, "SOL/USDT": 0.01}
MAX_LOTS = {"BTC/USDT": 12, "ETH/USDT": 300, "SOL/USDT": 500}  # one order at most this many steps
CAP = 2_500.0  # the planner keeps each symbol's |position + working| under this notional (USDT)
ORDERS, KILLS, SETTLE_KILLS = 40, 7, 2  # kills: during order calls; while restarting
CALL_TIMEOUT_S = 60


def server_env(home: Path, **extra: str) -> dict[str, str]:
    return {"MCP_TRADER_HOME": str(home), "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_LOG_LEVEL": "WARNING",
            "PATH": os.environ["PATH"], **extra}


def killable(home: Path, pidfile: Path, **extra: str) -> StdioServerParameters:
    """The real `mcp-trader serve` over stdio, exec'd by a shell that first writes the server's pid."""
    return StdioServerParameters(command="/bin/sh", args=["-c", 'echo $$ > "$0"; exec "$@"', str(pidfile),
                                                          *command(), "serve"], env=server_env(home, **extra))


# --- the ledger, read straight from SQLite -------------------------------------------------------------------

def rows(db: Path, sql: str, *params) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def replay(fills: list[dict]) -> tuple[dict[str, tuple[float, float, float]], list[int]]:
    """Average-cost books from the fills alone, in booking order: {symbol: (quantity, entry, realised)}, and the
    number of open symbols after each fill."""
    books: dict[str, tuple[float, float, float]] = {}
    open_after = []
    for f in fills:
        q0, entry, realised = books.get(f["symbol"], (0.0, 0.0, 0.0))
        dq = f["quantity"] if f["side"] == "buy" else -f["quantity"]
        q1 = round(q0 + dq, 12) + 0.0
        if q0 == 0 or (q0 > 0) == (dq > 0):
            entry = (q0 * entry + dq * f["price"]) / q1
        else:
            realised += min(abs(dq), abs(q0)) * (f["price"] - entry) * (1 if q0 > 0 else -1)
            entry = 0.0 if q1 == 0 else (entry if (q1 > 0) == (q0 > 0) else f["price"])
        books[f["symbol"]] = (q1, entry, realised)
        open_after.append(sum(1 for q, _, _ in books.values() if q != 0))
    return books, open_after


def audit(db: Path, start: float) -> dict:
    """Checks the paper ledger against itself and returns what the callers compare with their own records."""
    fills = rows(db, "SELECT * FROM fills WHERE mode = 'paper' ORDER BY rowid")
    positions = {r["symbol"]: r for r in rows(db, "SELECT * FROM positions WHERE mode = 'paper'")}
    (account,) = rows(db, "SELECT * FROM accounts WHERE mode = 'paper'")
    funding = rows(db, "SELECT symbol, SUM(amount) AS paid FROM funding_payments WHERE mode = 'paper' "
                       "GROUP BY symbol")
    paid = {r["symbol"]: r["paid"] for r in funding}
    orders = {r["client_order_id"]: r for r in rows(db, "SELECT * FROM orders WHERE mode = 'paper'")}
    per_order = Counter(f["client_order_id"] for f in fills)
    books, open_after = replay(fills)

    signed = Counter()
    for f in fills:
        signed[f["symbol"]] += f["quantity"] if f["side"] == "buy" else -f["quantity"]
    for symbol in set(signed) | set(positions):
        held = positions.get(symbol, {"quantity": 0.0})["quantity"]
        assert math.isclose(held, signed[symbol], abs_tol=1e-9), (symbol, held, signed[symbol])
        _, entry, realised = books.get(symbol, (0.0, 0.0, 0.0))
        if held:
            assert math.isclose(positions[symbol]["entry_price"], entry, rel_tol=1e-9), (symbol, entry)
        sym_fills = [f for f in fills if f["symbol"] == symbol]
        assert math.isclose(positions[symbol]["realized_pnl"], realised, abs_tol=1e-6), (symbol, realised)
        assert math.isclose(positions[symbol]["fees"], sum(f["fee"] for f in sym_fills), abs_tol=1e-9)
        assert math.isclose(sum(f["realized_pnl"] for f in sym_fills), realised, abs_tol=1e-6)

    realised = sum(f["realized_pnl"] for f in fills)
    fees = sum(f["fee"] for f in fills)
    funding_paid = sum(paid.values())
    cash = start - sum((f["quantity"] if f["side"] == "buy" else -f["quantity"]) * f["price"] for f in fills) \
        - fees - funding_paid
    assert math.isclose(account["cash"], cash, abs_tol=1e-6), (account["cash"], cash)
    assert math.isclose(account["realized_pnl"], realised, abs_tol=1e-6)
    assert math.isclose(account["fees"], fees, abs_tol=1e-9)
    assert math.isclose(account["funding"], funding_paid, abs_tol=1e-9)
    at_cost = sum(p["quantity"] * p["entry_price"] for p in positions.values())
    difference = account["cash"] + at_cost - (start + realised - fees - funding_paid)
    assert abs(difference) < 1e-6 * start, difference

    for coid, order in orders.items():  # each order's own figures agree with its fills
        mine = [f for f in fills if f["client_order_id"] == coid]
        assert math.isclose(order["filled_quantity"], sum(f["quantity"] for f in mine), abs_tol=1e-12), coid
        assert math.isclose(order["fees"], sum(f["fee"] for f in mine), abs_tol=1e-9), coid
        if order["status"] == "filled":
            assert math.isclose(order["filled_quantity"], order["quantity"], abs_tol=1e-12), coid
    assert set(per_order) <= set(orders)
    return {"orders": orders, "fills_per_order": per_order, "positions": {s: p["quantity"] for s, p in
                                                                          positions.items() if p["quantity"]},
            "max_open_symbols": max(open_after, default=0), "difference": difference}


# --- the driver ---------------------------------------------------------------------------------------------

@dataclass
class Planned:
    coid: str
    tool: str  # place_order or cancel_order
    args: dict
    expect: str  # the order's final status: filled, open or canceled
    fills: int
    symbol: str = ""


@dataclass
class Driver:
    home: Path
    rng: random.Random
    kills_left: int
    settle_kills_left: int
    stats: Counter = field(default_factory=Counter)
    client: Client | None = None
    pid: int | None = None
    starts: int = 0
    durations: dict[tuple[str, bool, int], list[float]] = field(default_factory=dict)  # (tool, fresh, calls)

    @property
    def pidfile(self) -> Path:
        return self.home / "server.pid"

    async def start(self) -> None:
        self.pidfile.unlink(missing_ok=True)
        self.client = Client(killable(self.home, self.pidfile))
        await self.client.__aenter__()
        self.pid = int(self.pidfile.read_text())
        self.starts += 1

    async def stop(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.__aexit__(None, None, None)  # the SDK bounds every wait of its shutdown

    def kill_delay(self, tool: str = "place_order", size: int = 1) -> float:
        """When to kill the server during the next call: anywhere in the span such a call typically takes (a
        server's first call is the slow one), or at once."""
        self.kills_left -= 1
        fresh = self.client is None
        seen = self.durations.get((tool, fresh, size), [])
        typical = statistics.median(seen) if seen else 2.0 if fresh else 0.1
        return 0.0 if self.rng.random() < 0.15 else self.rng.uniform(0, 1.2 * typical)

    def maybe_kill(self, tool: str) -> float | None:
        """While restarting, now and then (at most SETTLE_KILLS times in a run) the server dies again."""
        if self.settle_kills_left <= 0 or self.rng.random() >= 0.3:
            return None
        self.settle_kills_left -= 1
        return self.kill_delay(tool)

    async def call(self, tool: str, args: dict, kill_after: float | None = None) -> dict | None:
        return (await self.calls([(tool, args)], kill_after))[0]

    async def calls(self, batch: list[tuple[str, dict]], kill_after: float | None = None) -> list[dict | None]:
        """Tool calls sent at once: each one's result, or None where its answer was lost to the kill."""
        fresh = self.client is None
        if fresh:
            await self.start()
        results: list = [None] * len(batch)
        started = time.perf_counter()

        async def kill() -> None:
            await anyio.sleep(kill_after)
            os.kill(self.pid, signal.SIGKILL)
            self.stats["kills"] += 1

        async def one(i: int, tool: str, args: dict) -> None:
            try:
                results[i] = await self.client.call_tool(tool, args)
            except Exception as lost:  # the connection died under the call
                assert kill_after is not None, f"{tool} failed without a kill: {lost!r}"
                self.stats[f"lost: {type(lost).__name__}"] += 1

        try:
            with anyio.fail_after(CALL_TIMEOUT_S):
                async with anyio.create_task_group() as tg:
                    if kill_after is not None:
                        tg.start_soon(kill)
                    for i, (tool, args) in enumerate(batch):
                        tg.start_soon(one, i, tool, args)
        finally:
            if kill_after is not None:
                await self.stop()
        if kill_after is None:
            self.durations.setdefault((batch[0][0], fresh, len(batch)), []).append(time.perf_counter() - started)
        out = []
        for (tool, args), result in zip(batch, results, strict=True):
            if result is not None:
                assert not result.is_error, f"{tool} {args}: {result.content[0].text}"
                if kill_after is not None:
                    self.stats["answered before the kill"] += 1
            out.append(result.structured_content if result is not None else None)
        return out


def plan(rng: random.Random, reference: dict[str, float], held: dict[str, float]) -> list[Planned]:
    """A seeded order stream the risk guard accepts whatever the order in which kills land: market buys and sells,
    resting and marketable limits, reduce-only closes, cancels. `held` is the position after the probes."""
    positions, working = dict(held), dict.fromkeys(SYMBOLS, 0.0)
    resting: list[Planned] = []
    out: list[Planned] = []

    def lots(symbol: str, quantity: float) -> float:
        return round(round(quantity / STEP[symbol]) * STEP[symbol], 9)

    def tick(symbol: str, price: float) -> float:
        return round(round(price / TICK[symbol]) * TICK[symbol], 2)

    for i in range(ORDERS):
        symbol = rng.choice(SYMBOLS)
        price = reference[symbol]
        book = positions[symbol] + working[symbol]
        coid = f"crash-{i:03d}"
        kind = rng.choices(("market", "limit", "marketable", "close", "cancel"), (10, 2, 1, 3, 1))[0]
        if kind == "close" and positions[symbol] and book and (positions[symbol] > 0) == (book > 0):
            quantity = lots(symbol, min(abs(positions[symbol]), abs(book)) * rng.choice((0.5, 1.0)))
            if quantity >= STEP[symbol]:
                side = "sell" if positions[symbol] > 0 else "buy"
                out.append(Planned(coid, "place_order", {"symbol": symbol, "side": side, "quantity": quantity,
                                                         "reduce_only": True, "client_order_id": coid}, "filled", 1))
                positions[symbol] = round(positions[symbol] + (-quantity if side == "sell" else quantity), 9)
                continue
        if kind == "cancel" and resting:
            target = resting.pop(rng.randrange(len(resting)))
            out.append(Planned(target.coid, "cancel_order", {"client_order_id": target.coid}, "canceled", 0,
                               target.args["symbol"]))
            sign = 1 if target.args["side"] == "buy" else -1
            working[target.args["symbol"]] -= sign * target.args["quantity"]
            continue
        quantity = lots(symbol, rng.randint(1, MAX_LOTS[symbol]) * STEP[symbol])
        quantity = max(quantity, lots(symbol, 6.0 / price) + STEP[symbol])  # over the 5 USDT minimum notional
        side = "buy" if book * price < -CAP / 2 else "sell" if book * price > CAP / 2 else rng.choice(("buy", "sell"))
        sign = 1 if side == "buy" else -1
        args = {"symbol": symbol, "side": side, "quantity": quantity, "client_order_id": coid}
        if kind == "limit":  # rests: 10 % through the market, never met (the paper clock does not move here)
            order = Planned(coid, "place_order", {**args, "type": "limit", "price": tick(symbol, price * (1 - sign
                                                                                                        * 0.1))},
                            "open", 0)
            resting.append(order)
            working[symbol] += sign * quantity
        else:
            extra = {"type": "limit", "price": tick(symbol, price * (1 + sign * 0.05))} if kind == "marketable" else {}
            order = Planned(coid, "place_order", {**args, **extra}, "filled", 1)
            positions[symbol] = round(positions[symbol] + sign * quantity, 9)
        out.append(order)
    for order in out:
        order.symbol = order.symbol or order.args["symbol"]
    return out


def batches(orders: list[Planned], size: int = 3) -> list[list[Planned]]:
    """Consecutive orders on distinct symbols go out together: the guard accepts each whatever their order."""
    out: list[list[Planned]] = []
    for order in orders:
        if out and len(out[-1]) < size and order.symbol not in {o.symbol for o in out[-1]}:
            out[-1].append(order)
        else:
            out.append([order])
    return out


async def settle(driver: Driver, unknown: dict[str, Planned]) -> None:
    """After a restart: look every unanswered order up, and resend it only when the ledger lacks it or says it was
    never placed (a cancel: only when the order is still open)."""
    while unknown:
        listing = await driver.call("get_orders", {"limit": 1000}, driver.maybe_kill("get_orders"))
        if listing is None:
            continue
        found = {o["client_order_id"]: o for o in listing["orders"]}
        for coid, order in list(unknown.items()):
            status = found[coid]["status"] if coid in found else "absent"
            driver.stats[f"looked up {order.tool}: {status}"] += 1
            resend = status in ("absent", "not_placed") if order.tool == "place_order" else status == "open"
            if not resend:
                assert status == order.expect, f"{coid} ({order.tool}) is {status} after a restart"
                del unknown[coid]
                continue
            answer = await driver.call(order.tool, order.args, driver.maybe_kill(order.tool))
            driver.stats["resent"] += 1
            if answer is None:
                break  # the server died again: list again on the next one
            check_answer(order, answer)
            del unknown[coid]


def check_answer(order: Planned, answer: dict) -> None:
    if order.tool == "cancel_order":
        assert answer["status"] == "canceled", answer
        return
    assert answer["outcome"] in ("placed", "duplicate"), answer
    assert answer["order"]["status"] == order.expect, answer


async def drive(home: Path, seed: int) -> tuple[Driver, list[Planned]]:
    rng = random.Random(seed)
    driver = Driver(home, rng, kills_left=KILLS, settle_kills_left=SETTLE_KILLS)
    collected = await driver.call("collect_data", {"symbols": list(SYMBOLS), "days": 30})
    assert collected is not None
    probes = [Planned(f"probe-{s[:3].lower()}", "place_order",
                      {"symbol": s, "side": "buy", "quantity": round(20 * STEP[s], 9) if s != "BTC/USDT" else 0.005,
                       "client_order_id": f"probe-{s[:3].lower()}"}, "filled", 1) for s in SYMBOLS]
    reference, held = {}, {}
    for probe in probes:
        answer = await driver.call("place_order", probe.args)
        check_answer(probe, answer)
        reference[probe.args["symbol"]] = answer["order"]["reference_price"]
        held[probe.args["symbol"]] = probe.args["quantity"]
    orders = plan(rng, reference, held)
    unknown: dict[str, Planned] = {}
    groups = batches(orders)
    doomed = set(rng.sample(range(len(groups)), KILLS))
    for i, group in enumerate(groups):
        if unknown:
            await settle(driver, unknown)
        kill = driver.kill_delay(group[0].tool, len(group)) if i in doomed else None
        answers = await driver.calls([(o.tool, o.args) for o in group], kill)
        for order, answer in zip(group, answers, strict=True):
            if answer is None:
                unknown[order.coid] = order
            else:
                check_answer(order, answer)
    await settle(driver, unknown)
    return driver, probes + orders


@pytest.mark.slow
@pytest.mark.anyio
async def test_sigkill_at_random_points_loses_and_doubles_nothing(tmp_path):
    started = time.monotonic()
    home = tmp_path / "home"
    home.mkdir()
    driver, orders = await drive(home, SEED)
    try:
        pnl = await driver.call("get_pnl", {})
        listed = (await driver.call("get_orders", {"limit": 1000}))["orders"]
    finally:
        await driver.stop()
    print(f"\n{len(orders)} orders, {driver.starts} server starts, {time.monotonic() - started:.1f} s:",
          dict(sorted(driver.stats.items())))
    assert KILLS <= driver.stats["kills"] <= KILLS + SETTLE_KILLS and driver.starts == driver.stats["kills"] + 1

    assert pnl["ledger_balanced"], pnl["ledger_difference"]
    result = audit(home / "state.sqlite", pnl["start_balance"])

    # every intended order exactly once, in its final state, with one fill per filled order and none for others
    final = {o.coid: o for o in orders}  # a cancel's target carries the cancel's expectation
    assert set(result["orders"]) == set(final) == {o["client_order_id"] for o in listed}
    for coid, order in final.items():
        assert result["orders"][coid]["status"] == order.expect, (coid, result["orders"][coid])
        assert result["fills_per_order"][coid] == order.fills, (coid, result["fills_per_order"][coid])

    # positions are what the order stream implies, each planned quantity exactly once
    expected = Counter()
    for order in orders:
        if order.tool == "place_order" and order.fills:
            a = order.args
            expected[a["symbol"] + ":USDT"] += a["quantity"] if a["side"] == "buy" else -a["quantity"]
    expected = {s: round(q, 9) for s, q in expected.items() if round(q, 9)}
    assert {s: round(q, 9) for s, q in result["positions"].items()} == expected
    by_symbol = {p["symbol"]: p["quantity"] for p in pnl["positions"]}
    assert {s: round(q, 9) for s, q in by_symbol.items()} == expected
    assert math.isclose(pnl["cash"] + sum(p["quantity"] * p["entry_price"] for p in pnl["positions"]),
                        pnl["start_balance"] + pnl["realized_pnl"] - pnl["fees"] - pnl["funding"], abs_tol=1e-6)


@pytest.mark.anyio
async def test_recovery_leaves_orders_another_running_server_is_sending(tmp_path):
    """On start a server turns the pending paper orders of a dead server into not_placed, but not those that another
    server process on the same home is sending right now, and never an order recorded meanwhile."""
    from mcp_trader.config import Settings
    from mcp_trader.home import Home
    from mcp_trader.trading.desks import desk_of
    from mcp_trader.trading.orders import Intent
    from mcp_trader.trading.paper import PaperBroker

    home = Home(Settings(home=tmp_path / "home", offline=True))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        desk = await desk_of(home)
        db, ledger = desk.db, desk.ledger
        for coid, owner in (("dead-owner", dead.pid), ("live-owner", alive.pid), ("mine-before", os.getpid())):
            intent = Intent(client_order_id=coid, mode="paper", symbol="BTC/USDT:USDT", side="buy", type="market",
                            quantity=0.001, price=None, reduce_only=False)
            async with db.transaction() as conn:
                await ledger.insert_intent(conn, intent, {}, None, 60_000.0, "2024-10-01T00:00:00+00:00")
                await conn.execute("UPDATE orders SET owner_pid = ? WHERE client_order_id = ?", (owner, coid))
        await desk.recover("paper", PaperBroker(desk.prices, home.settings.paper_slippage_bps))
        status = {o.client_order_id: o.status for o in await ledger.orders("paper", None, None, None, 10)}
        # this process's own pid on a pending order at start is a previous process's that had the same pid
        assert status == {"dead-owner": "not_placed", "live-owner": "pending", "mine-before": "not_placed"}

        async with db.transaction() as conn:  # recorded by its sender between recovery's read and its write
            await conn.execute("UPDATE orders SET status = 'filled' WHERE client_order_id = 'live-owner'")
            await ledger.set_status(conn, "live-owner", "not_placed", "late", only_from=("pending", "unknown"))
        assert (await desk.order("live-owner")).status == "filled"
    finally:
        alive.kill()
        alive.wait()
        await home.close()
