"""Trading figures: round trips of paper place_order and get_pnl against a trivial tool, on one server, in one run.

    python benchmarks/bench_trading.py [--calls 300] [--warmup 20]

`mcp-trader serve` is started over stdio on a fresh temporary home, offline, and collect_data stores the bundled
sample (BTC, ETH, SOL, 1h, 30 days) so that paper prices exist. Then, after a warm-up of every call, the calls are
interleaved round by round (so that all of them see the same machine load and the same ledger size):

  list_models  the baseline, a cheap read-only tool: one SELECT on an empty home's model registry
  place_order  a paper market order, 0.001 BTC, buy and sell in turn (each with its own client_order_id): resolve
               to the venue's units, a transaction with idempotency, the risk guard and the intent, the paper fill,
               a transaction recording it
  get_pnl      the paper account marked to market, with its per-symbol figures, the balance check and an equity
               snapshot (a transaction)

p50 and p99 are over the timed calls; the ratio is each p50 over the baseline's p50.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import anyio
from mcp import Client, StdioServerParameters

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def server(home: str) -> StdioServerParameters:
    env = {"PATH": os.environ["PATH"], "MCP_TRADER_HOME": home, "MCP_TRADER_OFFLINE": "1",
           "MCP_TRADER_LOG_LEVEL": "WARNING"}
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_trader.server", "serve"], env=env)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    home = tempfile.mkdtemp(prefix="bench-trading-")
    async with Client(server(home)) as client:
        started = time.perf_counter()
        collected = await client.call_tool("collect_data", {"symbols": SYMBOLS, "days": 30})
        assert not collected.is_error, collected.content[0].text
        print(f"server on {home}, protocol {client.protocol_version}; collect_data {SYMBOLS} 30 days: "
              f"{time.perf_counter() - started:.2f} s")
        count = 0

        async def place() -> None:
            nonlocal count
            count += 1
            result = await client.call_tool("place_order", {
                "symbol": "BTC", "side": "buy" if count % 2 else "sell", "quantity": 0.001,
                "client_order_id": f"bench-{count:05d}"})
            assert not result.is_error and result.structured_content["outcome"] == "placed", result.content[0].text

        async def tool(name: str) -> None:
            result = await client.call_tool(name, {})
            assert not result.is_error, result.content[0].text

        calls = {
            "list_models": lambda: tool("list_models"),
            "place_order": place,
            "get_pnl": lambda: tool("get_pnl"),
        }
        for _ in range(args.warmup):
            for call in calls.values():
                await call()
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.calls):
            for name, call in calls.items():
                started = time.perf_counter()
                await call()
                times[name].append(time.perf_counter() - started)
        pnl = (await client.call_tool("get_pnl", {})).structured_content
        orders = (await client.call_tool("get_orders", {"limit": 1000})).structured_content["orders"]

    base = statistics.median(times["list_models"])
    print(f"\nround trips over stdio, {args.calls} calls each after {args.warmup} warm-up rounds, interleaved "
          f"(ledger: {len(orders)} orders at the end, ledger_balanced={pnl['ledger_balanced']}):")
    print(f"  {'call':<13} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'p50 / baseline':>15}")
    for name, values in times.items():
        p50 = statistics.median(values)
        label = "baseline" if name == "list_models" else f"{p50 / base:.2f}"
        print(f"  {name:<13} {p50 * 1000:8.2f} {percentile(values, 0.99) * 1000:8.2f} "
              f"{statistics.fmean(values) * 1000:8.2f} {label:>15}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each kind (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default 20)")
    arguments = parser.parse_args()
    if arguments.calls < 1 or arguments.warmup < 1:
        parser.error("--calls and --warmup: at least 1")
    anyio.run(main, arguments)
