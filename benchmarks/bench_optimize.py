"""Optimisation throughput: trials per minute of the optimize tool's default objective on the bundled data,
with one worker and with two worker processes sharing the study, in the same run.

    python benchmarks/bench_optimize.py [--target xgboost] [--trials 6] [--days 365] [--folds 4] [--storage URL]

The default objective is what `optimize` runs with its defaults: target xgboost, 4 walk-forward folds over
365 days of 1h bars of the symbols (default: 10 bundled assets), each trial fitting one XGBoost model per
fold and backtesting its test block; the median pruner is on, as in the tool. Offline: the sample serves.
"One worker" is a study run in this process; "two workers" are two `mcp-trader optimize-worker` processes
joining one study (the home's SQLite file, or --storage, e.g. a PostgreSQL URL). Throughput is measured from
the trials' own start and completion times in the storage (the earliest start to the latest completion of
the trials each setup ran), so process start-up and feature building are left out.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mcp_trader.config import Settings
from mcp_trader.data.sources.sample import ASSETS
from mcp_trader.home import Home
from mcp_trader.optimize.records import StudyRequest
from mcp_trader.optimize.study import default_storage, load, open_storage, run_study

AS_OF = "2024-09-30T23:00"


def main() -> None:
    args = parse()
    home_dir = Path(tempfile.mkdtemp(prefix="bench-optimize-"))
    settings = Settings(home=home_dir / "home", offline=True)
    storage = args.storage or default_storage(Home(settings))
    symbols = [f"{a}/USDT" for a in ASSETS[: args.assets]]
    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start; target "
          f"{args.target}, {len(symbols)} assets, {args.days} days of 1h bars, {args.folds} folds, storage "
          f"{storage.split(':')[0]}")
    one = asyncio.run(single(settings, storage, symbols, args))
    two = workers(settings, storage, home_dir, args)
    print(f"{'setup':12} {'trials':>6} {'span s':>8} {'trials/min':>11}")
    for name, (count, span) in (("1 worker", one), ("2 workers", two)):
        print(f"{name:12} {count:6d} {span:8.1f} {60 * count / span:11.2f}")
    print(f"speed-up with 2 workers: {(two[0] / two[1]) / (one[0] / one[1]):.2f} x")


async def single(settings: Settings, storage: str, symbols: list[str], args) -> tuple[int, float]:
    home = Home(settings)
    try:
        request = StudyRequest(target=args.target, symbols=symbols, days=args.days, as_of=AS_OF, folds=args.folds,
                               n_trials=args.trials, study="bench-1", storage=storage)
        await run_study(home, request)
    finally:
        await home.close()
    return span(storage, "bench-1", None)


def workers(settings: Settings, storage: str, home_dir: Path, args) -> tuple[int, float]:
    """A study made with one trial, then two worker processes adding --trials each at the same time."""
    symbols = [f"{a}/USDT" for a in ASSETS[: args.assets]]

    async def create() -> None:
        home = Home(settings)
        try:
            await run_study(home, StudyRequest(target=args.target, symbols=symbols, days=args.days, as_of=AS_OF,
                                               folds=args.folds, n_trials=1, study="bench-2", storage=storage))
        finally:
            await home.close()

    asyncio.run(create())
    env = {**os.environ, "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_LOG_LEVEL": "WARNING"}
    procs = [subprocess.Popen([sys.executable, "-m", "mcp_trader.server", "optimize-worker", "--study", "bench-2",
                               "--storage", storage, "--trials", str(args.trials), "--home",
                               str(home_dir / f"worker-{i}")], stdout=subprocess.DEVNULL, env=env)
             for i in range(2)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a worker failed with exit code {p.returncode}")
    return span(storage, "bench-2", skip_first=True)


def span(storage: str, name: str, skip_first: bool | None) -> tuple[int, float]:
    trials = [t for t in load(open_storage(storage), name).get_trials(deepcopy=False) if t.datetime_complete]
    if skip_first:
        trials = [t for t in trials if t.number > 0]  # the creator's trial, before the workers started
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return len(trials), (end - start).total_seconds()


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="xgboost", choices=("xgboost", "lstm", "confluence"))
    p.add_argument("--trials", type=int, default=6, help="trials per setup, and per worker with two (6)")
    p.add_argument("--assets", type=int, default=10, help="bundled assets (10)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--storage", help="a shared storage URL (default: a SQLite file in a temporary home)")
    return p.parse_args()


if __name__ == "__main__":
    main()
