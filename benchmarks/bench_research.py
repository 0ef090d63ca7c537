"""The default research loop on the bundled data, out of sample, through an MCP client: what each default strategy
earns after costs, with its interval, how often it trades and what it pays, next to buy-and-hold and flat.

    python benchmarks/bench_research.py [--days 365] [--lstm] [--samples 1000]

Data: the bundled Binance hourly sample (offline), the 8 assets the demo uses, the last `--days` days to 2024-09-30.
Strategies, each at its defaults (nothing here is tuned on the period it reports):
- XGBoost (train_model defaults: 24-bar triple-barrier labels, 4 expanding walk-forward folds), backtested on its
  walk-forward out-of-sample predictions (each bar scored by a model that never saw it);
- XGBoost on the forward-return target (target="return", otherwise the same), the same way;
- the LSTM (with --lstm: its defaults, slow on a CPU) the same way;
- the confluence rule, no model, over the same days;
each with the defaults (a model's expected move scaled by its validated edge, the cost gate at cost_margin 0.5, the
rule's 24-bar minimum hold), and again "ungated": the implied move as it stands, the gate at break-even and no
minimum holding time (edge implied, cost_margin 0, min_hold_bars 0), close to what the stack did before it knew
costs, measured in the same run. Buy-and-hold of the same assets over each span, and flat (no trade, Sharpe
undefined, return 0), beside them.
Columns: Sharpe (annualised) with its 95 % stationary-block-bootstrap interval, total return, trades per day,
fees + slippage + funding paid as a share of the starting capital, turnover (traded notional per year in
multiples of the mean equity: what costs scale with, whatever the equity did) and cost drag (costs per year as a
share of the mean equity: the annual return they took).
"""

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT", "ADA/USDT", "AVAX/USDT"]
END = "2024-09-30T23:00"
UNGATED = {"cost_margin": 0.0, "edge": "implied", "risk": {"min_hold_bars": 0}}


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("MCP_TRADER_HOME", tempfile.mkdtemp(prefix="bench-research-"))
    os.environ["MCP_TRADER_OFFLINE"] = "1"
    from mcp_trader.server import build_server

    rows = []
    async with Client(build_server()) as client:
        boot = {"bootstrap": {"samples": args.samples}, "wait_seconds": 300}
        models = [("xgboost", {}), ("xgboost return", {"target": "return"})] + (
            [("lstm", {"kind": "lstm"})] if args.lstm else [])
        for kind, chosen in models:
            model = await _job(client, "train_model", {"symbols": SYMBOLS, "days": args.days, "as_of": END,
                                                      "wait_seconds": 300, **chosen})
            print(f"{kind}: {model['verdict']['summary']} Validated edge per fold: {model['fold_edges']}")
            for label, extra in ((kind, {}), (f"{kind} (ungated)", UNGATED)):
                rows.append((label, await _job(client, "run_backtest", {"model_id": model["model_id"], **boot,
                                                                       **extra})))
        rule = {"strategy": "confluence", "symbols": SYMBOLS, "end": END, "days": args.days, **boot}
        for label, extra in (("confluence", {}), ("confluence (ungated)", UNGATED)):
            rows.append((label, await _job(client, "run_backtest", {**rule, **extra})))
    _print(rows)


async def _job(client: Client, tool: str, arguments: dict) -> dict:
    answer = (await client.call_tool(tool, arguments)).structured_content
    while answer["status"] in ("queued", "running"):
        waited = await client.call_tool("get_job", {"job_id": answer["job_id"], "wait_seconds": 300})
        answer = waited.structured_content
    if answer["status"] != "succeeded":
        raise SystemExit(f"{tool} failed: {answer.get('error')}")
    return answer["result"]


def _print(rows: list[tuple[str, dict]]) -> None:
    print(f"{'strategy':24} {'span':23} {'Sharpe':>7} {'95% interval':>16} {'return':>9} {'trades/day':>10} "
          f"{'costs/capital':>13} {'turnover':>9} {'cost drag':>9}")
    for label, r in rows:
        days = r["bars"] / 24
        paid = r["costs_paid"]
        costs = (paid["fees"] + paid["slippage"] + paid["funding"]) / 10_000
        span = f"{r['start'][:10]} to {r['end'][:10]}"
        print(_line(label, span, r["metrics"], r["intervals"], r["trades"]["trades"] / days, costs,
                    r["exposure"]["turnover"], paid["drag"]))
        print(_line("  buy and hold", span, r["buy_and_hold"], r["buy_and_hold_intervals"], None, None))
        if "ungated" in label:
            continue
        for b in r["baselines"]:
            if b["strategy"] != "flat":
                paid_b = (b["costs_paid"]["fees"] + b["costs_paid"]["slippage"] + b["costs_paid"]["funding"]) / 10_000
                print(_line(f"  {b['strategy']}", span, b["metrics"], b["intervals"], b["trades_per_day"], paid_b,
                            b["turnover"], b["costs_paid"]["drag"]))
    print(f"{'  flat':24} {'(any span)':23} {'-':>7} {'-':>16} {0:+9.2%} {0:10.2f} {0:13.2%}")


def _line(label: str, span: str, m: dict, spread: dict | None, per_day: float | None, costs: float | None,
          turnover: float | None = None, drag: float | None = None) -> str:
    sharpe = "-" if m["sharpe"] is None else f"{m['sharpe']:.2f}"
    band = "-"
    if spread and spread["sharpe"]:
        band = f"{spread['sharpe']['low']:.2f} to {spread['sharpe']['high']:.2f}"
    trades = "" if per_day is None else f"{per_day:.2f}"
    paid = "" if costs is None else f"{costs:.2%}"
    turned = "" if turnover is None else f"{turnover:.0f}"
    dragged = "" if drag is None else f"{drag:.1%}"
    return (f"{label:24} {span:23} {sharpe:>7} {band:>16} {m['total_return']:+9.2%} {trades:>10} {paid:>13} "
            f"{turned:>9} {dragged:>9}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--lstm", action="store_true", help="also the default LSTM (slow on a CPU)")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap samples per interval")
    asyncio.run(main(parser.parse_args()))
