"""Paper orders under concurrency: 100 place_order calls at once through real MCP client connections, to one
server process over streamable HTTP (10 connections x 10 calls) and to two server processes sharing one home over
stdio (2 x 50), with risk limits tight enough (2 open positions, 0.5 x leverage) that the guard refuses many of
them while others race for the same free slot. Afterwards: every call got a filled order or a clear refusal,
refused orders left no ledger row, each placed order has exactly one fill, positions equal the signed sum of
fills, the ledger balances, and replaying the fills in booking order never shows more open symbols than allowed
nor gross exposure over the leverage limit."""

import random
import re
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from test_server_process import command, free_port, wait_listening
from test_trading_crash import audit, rows, server_env

from mcp_trader.store.db import Database

SEED = 7
MAX_POSITIONS, MAX_LEVERAGE = 2, 0.5
LIMITS = {"MCP_TRADER_LIMITS__MAX_POSITIONS": str(MAX_POSITIONS), "MCP_TRADER_LIMITS__MAX_LEVERAGE": str(MAX_LEVERAGE)}
UNIT = {"BTC/USDT": 0.004, "ETH/USDT": 0.1, "SOL/USDT": 1.7, "BNB/USDT": 0.45}  # about 250 USDT each
REFUSAL = re.compile(r"risk limit (max_positions|max_leverage): .* exceeds the limit|reduce_only: the order would")
CALL_TIMEOUT_S = 120


def orders(rng: random.Random, n: int) -> list[dict]:
    """Buys and sells of 1-3 units on four symbols, some reduce-only: sums of units often return a position to
    zero, freeing a slot that concurrent orders on other symbols then race for."""
    out = []
    for i in range(n):
        symbol = rng.choice(list(UNIT))
        quantity = round(rng.choice((1, 1, 2, 3)) * UNIT[symbol], 9)
        order = {"symbol": symbol, "side": rng.choice(("buy", "sell")), "quantity": quantity,
                 "client_order_id": f"conc-{i:03d}"}
        if rng.random() < 0.15:
            order["reduce_only"] = True
        out.append(order)
    return out


async def fire(client: Client, batch: list[dict]) -> dict[str, tuple[bool, str | dict]]:
    """All of batch at once on one connection: {client_order_id: (is_error, error text or structured answer)}."""
    answers: dict[str, tuple[bool, str | dict]] = {}

    async def one(args: dict) -> None:
        result = await client.call_tool("place_order", args)
        answers[args["client_order_id"]] = (True, result.content[0].text) if result.is_error else \
            (False, result.structured_content)

    with anyio.fail_after(CALL_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            for args in batch:
                tg.start_soon(one, args)
    return answers


async def collect(client: Client) -> None:
    result = await client.call_tool("collect_data", {"symbols": list(UNIT), "days": 30})
    assert not result.is_error, result.content[0].text


def check(home: Path, sent: list[dict], answers: dict[str, tuple[bool, str | dict]], pnl: dict) -> dict:
    assert set(answers) == {o["client_order_id"] for o in sent}
    placed, refused = set(), {}
    for coid, (is_error, answer) in answers.items():
        if is_error:
            assert REFUSAL.search(answer), f"{coid}: neither placed nor a clear refusal: {answer}"
            refused[coid] = answer
        else:
            assert answer["outcome"] == "placed" and answer["order"]["status"] == "filled", (coid, answer)
            assert len(answer["fills"]) == 1, (coid, answer)
            placed.add(coid)

    db = home / "state.sqlite"
    result = audit(db, pnl["start_balance"])  # positions = signed sum of fills; cash and the identity balance
    assert pnl["ledger_balanced"], pnl["ledger_difference"]
    statuses = {coid: o["status"] for coid, o in result["orders"].items()}
    assert set(statuses) == placed, "refused orders must leave no ledger row, placed ones one each"
    assert set(statuses.values()) == {"filled"}
    assert all(result["fills_per_order"][coid] == 1 for coid in placed)
    assert result["max_open_symbols"] <= MAX_POSITIONS, result["max_open_symbols"]
    assert {p["symbol"]: round(p["quantity"], 9) for p in pnl["positions"]} == \
        {s: round(q, 9) for s, q in result["positions"].items()}

    # gross exposure at the marks the guard used never passed the leverage limit (fees and slippage aside)
    marks = {r["symbol"]: r["reference_price"] for r in rows(db, "SELECT symbol, reference_price FROM orders")}
    held, cash, worst = {}, pnl["start_balance"], 0.0
    for f in rows(db, "SELECT * FROM fills WHERE mode = 'paper' ORDER BY rowid"):
        signed = f["quantity"] if f["side"] == "buy" else -f["quantity"]
        held[f["symbol"]] = held.get(f["symbol"], 0.0) + signed
        cash -= signed * f["price"] + f["fee"]
        gross = sum(abs(q) * marks[s] for s, q in held.items())
        equity = cash + sum(q * marks[s] for s, q in held.items())
        worst = max(worst, gross / equity)
    assert worst <= MAX_LEVERAGE * 1.001, worst

    reasons = {name: sum(name in text for text in refused.values())
               for name in ("max_positions", "max_leverage", "reduce_only")}
    assert placed and reasons["max_positions"], (len(placed), reasons)  # both outcomes happened
    return {"placed": len(placed), "refused": reasons, "max_open_symbols": result["max_open_symbols"],
            "worst_leverage": round(worst, 4)}


@pytest.mark.slow
@pytest.mark.anyio
async def test_100_concurrent_orders_over_http_on_one_server(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    proc = subprocess.Popen([*command(), "serve", "--http", "--port", str(port)], env=server_env(home, **LIMITS),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    sent = orders(random.Random(SEED), 100)
    try:
        wait_listening(port, proc)
        async with Client(url) as first:
            await collect(first)
        answers: dict = {}

        async def connection(batch: list[dict]) -> None:
            async with Client(url) as client:
                answers.update(await fire(client, batch))

        async with anyio.create_task_group() as tg:
            for k in range(10):
                tg.start_soon(connection, sent[k * 10:(k + 1) * 10])
        async with Client(url) as last:
            pnl = (await last.call_tool("get_pnl", {})).structured_content
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = check(home, sent, answers, pnl)
    print("\nHTTP, 10 connections x 10 calls:", summary)


@pytest.mark.slow
@pytest.mark.anyio
async def test_100_concurrent_orders_from_two_server_processes_on_one_home(tmp_path):
    home = tmp_path / "home"
    cmd = command()

    def server() -> Client:
        return Client(StdioServerParameters(command=cmd[0], args=[*cmd[1:], "serve"], env=server_env(home, **LIMITS)))

    sent = orders(random.Random(SEED + 1), 100)
    results: list[dict] = []

    async def run(client: Client, batch: list[dict]) -> None:
        results.append(await fire(client, batch))

    async def first_call(client: Client) -> None:
        result = await client.call_tool("list_models", {})
        assert not result.is_error, result.content[0].text

    async with server() as a, server() as b:
        async with anyio.create_task_group() as tg:  # both open (and migrate) the fresh home at once
            tg.start_soon(collect, a)
            tg.start_soon(first_call, b)
        async with anyio.create_task_group() as tg:  # B's first order recovers the ledger while A's are in flight
            tg.start_soon(run, a, sent[0::2])
            tg.start_soon(run, b, sent[1::2])
        pnl = (await b.call_tool("get_pnl", {})).structured_content
    answers = {k: v for r in results for k, v in r.items()}
    summary = check(home, sent, answers, pnl)
    print("\nstdio, 2 server processes x 50 calls:", summary)


@pytest.mark.anyio
async def test_a_write_waits_out_a_stale_read_snapshot(tmp_path):
    """WAL: a connection whose open read (another task's, between execute and fetch) predates another process's
    commit is refused BEGIN IMMEDIATE at once, busy timeout or not; the transaction waits for the read instead."""
    path = tmp_path / "state.sqlite"
    mine, other = await Database(path).open(), await Database(path).open()
    try:
        async with mine.transaction() as conn:
            await conn.execute("CREATE TABLE t (x INTEGER)")
            await conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
        reading = await mine.conn.execute("SELECT x FROM t")  # a snapshot, held until the fetch
        async with other.transaction() as conn:  # "another process" commits after it
            await conn.execute("INSERT INTO t VALUES (100)")

        async def finish_read() -> None:
            await anyio.sleep(0.2)
            assert len(await reading.fetchall()) == 100
            await reading.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_read)
            started = time.monotonic()
            async with mine.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (101)")
            assert time.monotonic() - started >= 0.1  # it waited for the read, then wrote
        assert (await mine.fetch_one("SELECT COUNT(*) AS n FROM t"))["n"] == 102
    finally:
        await mine.close()
        await other.close()


def test_a_working_order_that_would_close_a_position_does_not_free_its_slot():
    """The race the two-process run found: the guard counted a position with a working (pending) order that would
    close it as closed, so an order on another symbol passed; if the closing order fills later, or never, one
    position too many is open. Positions count at their largest exposure whatever the working orders do."""
    from datetime import UTC, datetime

    from mcp_trader.policy.guard import Book, RiskRejected, check
    from mcp_trader.policy.limits import RiskLimits
    from mcp_trader.trading.orders import Intent

    limits = RiskLimits(max_positions=1, max_leverage=0.5)
    book = Book(quantities={"ETH/USDT:USDT": 0.0}, marks={"ETH/USDT:USDT": 2600.0}, equity=10_000.0,
                day_start_equity=10_000.0, halted_until=None, positions={"ETH/USDT:USDT": -1.0},
                working={"ETH/USDT:USDT": (1.0, 0.0)})
    btc = Intent(client_order_id="b", mode="paper", symbol="BTC/USDT:USDT", side="buy", type="market",
                 quantity=0.01, price=None, reduce_only=False)
    with pytest.raises(RiskRejected, match="max_positions"):
        check(limits, btc, 63_000.0, 300.0, book, datetime.now(UTC))
    eth = Intent(client_order_id="e", mode="paper", symbol="ETH/USDT:USDT", side="sell", type="market",
                 quantity=1.0, price=None, reduce_only=False)  # would be 2 ETH short if the working buy never fills
    with pytest.raises(RiskRejected, match="max_leverage"):
        check(limits, eth, 2600.0, 30.0, book, datetime.now(UTC))
