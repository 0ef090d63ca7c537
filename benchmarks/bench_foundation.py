"""Foundation figures: server cold start vs a bare MCPServer, and collect_data from the bundled sample.

    python benchmarks/bench_foundation.py [--runs 9]

Cold start is spawn → initialize → completed tools/list over stdio, for `python -m mcp_trader.server
serve` and for a bare one-tool MCPServer launched the same way, interleaved in one run so that both
see the same machine load; the ratio of medians is the figure (target ≤ 1.3). collect_data is timed
through an in-process MCP client on a fresh home: 10 symbols × 3 timeframes (target < 2 s).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

HERE = Path(__file__).resolve().parent
SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT",
           "DOGE/USDT", "ADA/USDT", "AVAX/USDT", "LINK/USDT", "LTC/USDT"]


async def cold_start(args: list[str], home: str) -> float:
    env = {"PATH": os.environ["PATH"], "MCP_TRADER_HOME": home, "MCP_TRADER_OFFLINE": "1"}
    started = time.perf_counter()
    async with Client(StdioServerParameters(command=sys.executable, args=args, env=env), mode="legacy") as client:
        await client.list_tools()
        elapsed = time.perf_counter() - started
    return elapsed


async def startup(runs: int) -> None:
    ours_cmd, bare_cmd = ["-m", "mcp_trader.server", "serve"], [str(HERE / "bare_server.py")]
    home = tempfile.mkdtemp()
    await cold_start(ours_cmd, home)  # warm the OS file cache for both before measuring
    await cold_start(bare_cmd, home)
    ours, bare = [], []
    for _ in range(runs):
        ours.append(await cold_start(ours_cmd, home))
        bare.append(await cold_start(bare_cmd, home))
    o, b = statistics.median(ours), statistics.median(bare)
    print(f"cold start to tools/list over stdio, median of {runs}:")
    print(f"  bare MCPServer, one tool : {b * 1000:7.0f} ms")
    print(f"  mcp-trader serve         : {o * 1000:7.0f} ms")
    print(f"  ratio                    : {o / b:7.2f}  (target <= 1.3)")


async def collect(label: str, args: dict) -> None:
    from mcp_trader.config import Settings
    from mcp_trader.server import build_server

    settings = Settings(home=Path(tempfile.mkdtemp()), offline=True)
    async with Client(build_server(settings)) as client:
        started = time.perf_counter()
        first = await client.call_tool("collect_data", args)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        again = await client.call_tool("collect_data", args)
        warm = time.perf_counter() - started
    assert not first.is_error and not again.is_error, first.content
    bars = sum(d["rows"] for d in first.structured_content["datasets"])
    print(f"collect_data from the sample, {label}: {len(first.structured_content['datasets'])} datasets, "
          f"{bars:,} bars")
    print(f"  fresh home   : {cold:6.2f} s  (target < 2 s)")
    print(f"  second call  : {warm:6.2f} s  (incremental: nothing to fetch)")


BASE = {"symbols": SYMBOLS, "timeframes": ["1h", "4h", "1d"], "sources": ["sample"]}
CASES = {
    "year": ("10 symbols x 3 timeframes, last 365 days", {**BASE, "days": 365}),
    "full": ("10 symbols x 3 timeframes, full history 2021-01..2024-09",
             {**BASE, "start": "2021-01-01", "end": "2024-10-01"}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        anyio.run(collect, *CASES[args.case])
        return
    anyio.run(startup, args.runs)
    for case in CASES:  # each in a fresh process: the first call pays the lazy imports, as a user's would
        subprocess.run([sys.executable, __file__, "--case", case], check=True)


if __name__ == "__main__":
    main()
