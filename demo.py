"""`mcp-trader demo`: a scripted agent session against the server, offline, on the bundled data.

It starts `mcp-trader serve` as a subprocess, talks to it through the official MCP client over
stdio like any agent would, calls the tools that exist and prints a short report.
"""

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]
CONFLUENCE_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT", "ADA/USDT", "AVAX/USDT"]


def run_demo(home: str | None = None) -> int:
    home = home or tempfile.mkdtemp(prefix="mcp-trader-demo-")
    return anyio.run(_session, home)


def _server(home: str) -> StdioServerParameters:
    env = {"MCP_TRADER_HOME": home, "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_LOG_LEVEL": "WARNING",
           "PATH": os.environ.get("PATH", "")}
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_trader.server", "serve"], env=env)


async def _session(home: str) -> int:
    started = time.perf_counter()
    print(f"mcp-trader demo: state in {home}; network sources off (MCP_TRADER_OFFLINE=1)\n")
    async with Client(_server(home)) as client:
        tools = (await client.list_tools()).tools
        print(f"connected over stdio ({client.protocol_version}) in {time.perf_counter() - started:.1f} s; "
              f"tools: {', '.join(t.name for t in tools)}\n")
        ok = await _collect(client)
        ok &= await _incremental(client)
        ok &= await _synthetic(client)
        ok &= await _bad_input(client)
        await _resources(client)
        ok &= await _confluence(client, Path(home))
        trained, model_id = await _models(client, Path(home))
        ok &= trained
        ok &= await _backtests(client, Path(home), model_id)
        ok &= await _optimize(client)
        ok &= await _export(client, model_id)
        ok &= await _paper_trading(client, model_id)
    print(f"\ndone in {time.perf_counter() - started:.1f} s" + ("" if ok else " — WITH FAILURES"))
    return 0 if ok else 1


async def _call(
    client: Client, args: dict[str, Any], label: str, tool: str = "collect_data"
) -> dict[str, Any] | None:
    messages: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(f"[{done / total:.0%}] {message}" if total else f"[{done:.0f}] {message}")

    result = await client.call_tool(tool, args, progress_callback=progress)
    print(f"## {label}")
    if result.is_error:
        lines = [line.strip() for line in result.content[0].text.splitlines() if "errors.pydantic.dev" not in line]
        print(f"   tool error: {' '.join(lines)[:400]}")
        return None
    print(f"   progress notifications: {len(messages)} (last: {messages[-1] if messages else '-'})")
    return result.structured_content


async def _collect(client: Client) -> bool:
    out = await _call(client, {"symbols": SYMBOLS, "timeframes": ["1h", "4h", "1d"], "days": 365},
                      "collect_data: 4 symbols x 1h/4h/1d, last 365 days (fallback chain, offline)")
    if out is None:
        return False
    first = out["datasets"][0]
    chain = ", ".join(f"{a['source']}={a['outcome']}" for a in first["attempts"])
    print(f"   {out['summary']}")
    print(f"   fallback for {first['symbol']} {first['timeframe']}: {chain}")
    for note in first["notes"]:
        print(f"   note: {note}")
    print(f"   {'dataset':32} {'bars':>6}  {'span (UTC)':41} quality")
    for d in out["datasets"]:
        print(f"   {d['dataset_id']:32} {d['rows']:>6}  {d['start'][:16]} .. {d['end'][:16]}  {d['quality']}")
    return len(out["datasets"]) == len(SYMBOLS) * 3


async def _incremental(client: Client) -> bool:
    out = await _call(client, {"symbols": SYMBOLS[:2], "timeframes": ["1h"], "days": 365},
                      "collect_data again: incremental, nothing new to fetch")
    if out is None:
        return False
    print(f"   {out['summary']}")
    return all(d["new_rows"] == 0 for d in out["datasets"])


async def _synthetic(client: Client) -> bool:
    out = await _call(client, {"symbols": ["BTC/USDT", "ETH/USDT"], "timeframes": ["1h"],
                               "start": "2025-06-01", "end": "2025-07-01"},
                      "collect_data for June 2025: past the sample's end, so synthetic serves")
    if out is None:
        return False
    print(f"   {out['summary']}")
    print(f"   synthetic flag: {out['synthetic']}; note: {out['datasets'][0]['notes'][0]}")
    return out["synthetic"]


async def _bad_input(client: Client) -> bool:
    out = await _call(client, {"symbols": ["BTC/USDT"], "timeframes": ["2h"]}, "bad input: timeframe 2h")
    out2 = await _call(client, {"symbols": ["NOPE/USDT"], "days": 7}, "bad input: an unknown symbol")
    return out is None and out2 is None


async def _resources(client: Client) -> None:
    listing = json.loads((await client.read_resource("trader://datasets")).contents[0].text)["datasets"]
    print(f"## resources\n   trader://datasets lists {len(listing)} datasets")
    uri = listing[0]["uri"]
    record = json.loads((await client.read_resource(uri)).contents[0].text)
    ranges = record["provenance"]["ranges"]
    print(f"   {uri}: {record['rows']} bars, hash {record['content_hash'][:12]}…, "
          f"{len(ranges)} fetched range(s), first from {ranges[0]['source']} at {ranges[0]['fetched_at']}")
    quality = record["quality"]
    print(f"   quality: {quality['gap_count']} gaps, {quality['zero_volume_bars']} zero-volume bars, "
          f"{len(quality['spikes'])} spikes flagged")


async def _confluence(client: Client, home: Path) -> bool:
    args = {"symbols": CONFLUENCE_SYMBOLS, "timeframe": "1h", "as_of": "2024-09-01T12:00:00Z"}
    label = "compute_confluence: 8 assets, 1h, as of 2024-09-01 12:00 UTC"
    out = await _call(client, args, label, "compute_confluence")
    if out is None:
        return False
    print(f"   {out['summary']}")
    print(f"   feature set {out['feature_set_id']}: {out['rows']} rows x {out['columns']} features")
    print(f"   {'asset':15} {'score':>6} {'dir':>5} {'align':>5} {'corr_btc_7d':>11} {'corr_mkt_7d':>11} "
          f"{'tech':>5} {'mom':>5} {'vol!':>4}")
    for a in out["assets"]:
        c = {k: "-" if v is None else f"{v:.2f}" for k, v in a["components"].items()}
        print(f"   {a['symbol']:15} {a['confluence_score']:+6.2f} {a['direction']:+5.2f} {a['alignment']:5.2f} "
              f"{c['corr_btc_7d']:>11} {c['corr_mkt_7d']:>11} {c['tech_alignment']:>5} "
              f"{c['mom_alignment']:>5} {c['volume_abnormal']:>4}")
    again = await _call(client, args, "compute_confluence again: same inputs, read from the store",
                        "compute_confluence")
    print(f"   cached: {again and again['cached']}")
    image = (await client.read_resource(out["resources"]["heatmap"])).contents[0]
    path = home / "confluence-heatmap.png"
    path.write_bytes(base64.b64decode(image.blob))
    table = (await client.read_resource(out["resources"]["table"])).contents[0].text
    print(f"   {out['resources']['heatmap']} -> {path} ({path.stat().st_size // 1024} KiB)")
    print(f"   {out['resources']['table']}: {table.count(chr(10)) - 1} rows of CSV")
    bad = await _call(client, {"symbols": ["ETH/USDT"]}, "bad input: confluence of one symbol", "compute_confluence")
    return bad is None and bool(again and again["cached"]) and len(out["assets"]) == len(CONFLUENCE_SYMBOLS)


async def _models(client: Client, home: Path) -> tuple[bool, str | None]:
    args = {"symbols": CONFLUENCE_SYMBOLS, "kind": "xgboost", "days": 365, "horizon": 24, "wait_seconds": 3}
    label = "train_model: XGBoost, 8 assets, 1h, last 365 days, 4 walk-forward folds (answers within 3 s)"
    job = await _call(client, args, label, "train_model")
    if job is None:
        return False, None
    print(f"   {job['status']} after 3 s: {job['job_id']} at {job['progress']:.0%} ({job['message']})")
    while job["status"] in ("queued", "running"):
        job = await _call(client, {"job_id": job["job_id"], "wait_seconds": 30}, "get_job: wait up to 30 s",
                          "get_job")
        print(f"   {job['status']} at {job['progress']:.0%}: {job['message']}")
    if job["status"] != "succeeded":
        print(f"   job ended {job['status']}: {job['error']}")
        return False, None
    xgb = job["result"]
    _print_model(xgb)
    chart = (await client.read_resource(xgb["resources"]["importances_chart"])).contents[0]
    path = home / "feature-importances.png"
    path.write_bytes(base64.b64decode(chart.blob))
    print(f"   {xgb['resources']['importances_chart']} -> {path} ({path.stat().st_size // 1024} KiB)")
    small = {"hidden": 32, "layers": 1, "seq_len": 24, "epochs": 2, "samples_per_epoch": 2048}
    lstm = await _call(
        client, {"symbols": SYMBOLS, "kind": "lstm", "variant": "aster_native", "days": 180, "folds": 2,
                 "lstm": small, "wait_seconds": 120},
        "train_model: small LSTM (1 x 32, 24-bar sequences, 2 epochs), Aster-native variant, 4 assets, 180 days",
        "train_model",
    )
    if lstm is None or lstm["status"] != "succeeded":
        return False, xgb["model_id"]
    _print_model(lstm["result"])
    bad = await _call(client, {"symbols": SYMBOLS, "horizon": 0}, "bad input: horizon 0", "train_model")
    short = await _call(client, {"symbols": SYMBOLS, "days": 40, "folds": 8}, "bad input: 40 days for 8 folds",
                        "train_model")
    listed = (await client.call_tool("list_models", {})).structured_content["result"]
    print(f"## list_models: {', '.join(m['model_id'] for m in listed)}")
    return bad is None and short is None and len(listed) == 2, xgb["model_id"]


async def _backtests(client: Client, home: Path, model_id: str | None) -> bool:
    if model_id is None:
        return False
    label = f"run_backtest: {model_id} on its walk-forward out-of-sample predictions, default costs and risk"
    run = await _call(client, {"model_id": model_id, "wait_seconds": 120}, label, "run_backtest")
    if run is None or run["status"] != "succeeded":
        return False
    result = run["result"]
    _print_backtest(result)
    chart = (await client.read_resource(result["resources"]["equity_chart"])).contents[0]
    path = home / "equity.png"
    path.write_bytes(base64.b64decode(chart.blob))
    print(f"   {result['resources']['equity_chart']} -> {path} ({path.stat().st_size // 1024} KiB)")
    trades = (await client.read_resource(result["resources"]["trades"])).contents[0].text.splitlines()
    print(f"   {result['resources']['trades']}: {len(trades) - 1} trades, columns {trades[0][:90]}…")
    rule = await _call(client, {"strategy": "confluence", "symbols": CONFLUENCE_SYMBOLS, "days": 365,
                                "wait_seconds": 120},
                       "run_backtest: the confluence rule (no model), 8 assets, last 365 days", "run_backtest")
    if rule is None or rule["status"] != "succeeded":
        return False
    _print_backtest(rule["result"])
    bad = await _call(client, {"strategy": "confluence", "symbols": SYMBOLS, "risk": {"risk_per_trade": 1.5}},
                      "bad input: risk per trade of 150 %", "run_backtest")
    listed = (await client.call_tool("list_backtests", {})).structured_content["result"]
    print(f"## list_backtests: {', '.join(r['run_id'] for r in listed)}")
    return bad is None and len(listed) == 2


async def _optimize(client: Client) -> bool:
    args = {"symbols": SYMBOLS, "target": "confluence", "days": 365, "n_trials": 20, "study": "demo-confluence",
            "wait_seconds": 120}
    job = await _call(client, args, "optimize: 20 trials of the confluence rule's settings, 4 walk-forward folds",
                      "optimize")
    if job is None or job["status"] != "succeeded":
        return False
    study = job["result"]
    t = study["trials"]
    print(f"   {t['total']} trials: {t['complete']} completed, {t['pruned']} pruned, {t['failed']} failed")
    if study["best"]:
        params = ", ".join(f"{k} {v:.3g}" for k, v in study["best"]["params"].items())
        print(f"   best: trial {study['best']['number']} ({params})")
    print(f"   {study['verdict']}")
    print(f"   join from another machine: {study['join']}")
    bad = await _call(client, {**args, "n_trials": 0}, "bad input: n_trials 0", "optimize")
    return bad is None and t["failed"] == 0


async def _export(client: Client, model_id: str | None) -> bool:
    if model_id is None:
        return False
    job = await _call(client, {"model_id": model_id, "wait_seconds": 120},
                      f"export_onnx: {model_id} with a parity check on its last walk-forward test rows", "export_onnx")
    if job is None or job["status"] != "succeeded":
        return False
    cert = job["result"]
    parity, latency = cert["parity"], cert["latency"]
    print(f"   {cert['id']}: {', '.join(f['name'] for f in cert['files'])}; parity on {parity['held_out']['rows']} "
          f"rows: max relative difference {parity['max_relative_diff']:.2e} (threshold {parity['threshold']:.0e}), "
          f"{'passed' if parity['passed'] else 'FAILED'}")
    for case in (latency["single_row"], latency["batch"]):
        print(f"   {case['rows']:>5} rows: native p50 {case['native']['p50_ms']:.3f} ms, ONNX Runtime p50 "
              f"{case['onnxruntime']['p50_ms']:.3f} ms ({case['speedup_p50']:.1f}x)")
    bad = await _call(client, {"model_id": "mdl-nope"}, "bad input: export of an unknown model", "export_onnx")
    return bad is None and parity["passed"]


async def _paper_trading(client: Client, model_id: str | None) -> bool:
    if model_id is None:
        return False
    report = await _call(client, {"model_id": model_id}, f"get_signals: {model_id} at the latest bar", "get_signals")
    if report is None:
        return False
    print(f"   {report['summary']}")
    for s in report["signals"]:
        print(f"   {s['symbol']:<15} {s['signal']:<4} confidence {s['confidence'] or 0:.2f}  close {s['close']:,.2f}  "
              f"ATR {s['atr'] or 0:,.2f}")
    order = {"symbol": "BTC", "side": "buy", "notional": 1000, "client_order_id": "demo-1"}
    placed = await _call(client, order, "place_order: paper market buy of 1,000 USDT of BTC", "place_order")
    if placed is None:
        return False
    o, risk = placed["order"], placed["risk"]
    print(f"   {o['status']}: {o['filled_quantity']} BTC at {o['average_price']:,.2f}, fee {o['fees']:.4f} USDT; "
          f"risk at a {risk['limits']['stop_atr']:g} ATR stop {risk['risk']:.2f} USDT "
          f"({risk['risk_fraction']:.2%} of equity, limit {risk['limits']['risk_per_trade']:.0%})")
    again = await _call(client, order, "place_order: the same client_order_id again (a safe retry)", "place_order")
    print(f"   outcome: {again and again['outcome']} (nothing new sent)")
    big = await _call(client, {**order, "notional": 50_000, "client_order_id": "demo-2"},
                      "bad input: an order over the risk limits", "place_order")
    pnl = await _call(client, {}, "get_pnl: the paper account", "get_pnl")
    if pnl is None:
        return False
    print(f"   equity {pnl['equity']:,.2f} USDT, cash {pnl['cash']:,.2f}, unrealised {pnl['unrealized_pnl']:+.2f}, "
          f"fees {pnl['fees']:.4f}; ledger balanced: {pnl['ledger_balanced']}")
    return big is None and again is not None and again["outcome"] == "duplicate" and pnl["ledger_balanced"]


def _print_backtest(result: dict[str, Any]) -> None:
    print(f"   {result['summary']}")
    print(f"   {'':14} {'return':>8} {'Sharpe':>7} {'95% interval':>15} {'Sortino':>8} {'max DD':>7} {'DD days':>8}")
    for name, m, spread in (("strategy", result["metrics"], result["intervals"]),
                            ("buy and hold", result["buy_and_hold"], result["buy_and_hold_intervals"])):
        sharpe = "-" if m["sharpe"] is None else f"{m['sharpe']:.2f}"
        sortino = "-" if m["sortino"] is None else f"{m['sortino']:.2f}"
        band = "-" if not spread or not spread["sharpe"] else f"{spread['sharpe']['low']:.2f} to " \
                                                              f"{spread['sharpe']['high']:.2f}"
        print(f"   {name:14} {m['total_return']:+8.2%} {sharpe:>7} {band:>15} {sortino:>8} {m['max_drawdown']:7.2%} "
              f"{m['max_drawdown_days']:8.1f}")
    t, c, x = result["trades"], result["costs_paid"], result["exposure"]
    win = "-" if t["win_rate"] is None else f"{t['win_rate']:.0%}"
    pf = "-" if t["profit_factor"] is None else f"{t['profit_factor']:.2f}"
    print(f"   {t['trades']} trades ({t['long_trades']} long, {t['short_trades']} short), win rate {win}, profit "
          f"factor {pf}, exits {t['exits']}")
    print(f"   paid: fees {c['fees']:.2f}, slippage {c['slippage']:.2f}, funding {c['funding']:+.2f}; in the "
          f"market {x['time_in_market']:.0%} of bars, mean leverage {x['average_leverage']:.2f}")


def _print_model(result: dict[str, Any]) -> None:
    print(f"   model {result['model_id']} ({result['kind']}, {result['variant']}) on {result['device']} in "
          f"{result['training_seconds']:.0f} s; {result['test_rows']} out-of-sample rows")
    print(f"   {result['verdict']['summary']}")
    print(f"   {'':10} {'accuracy':>8} {'macro F1':>8} {'log loss':>8} {'IC':>7}")
    rows = {"model": result["out_of_sample"], **result["baselines"]}
    for name, m in rows.items():
        ic = "-" if m["ic"] is None else f"{m['ic']:+.3f}"
        print(f"   {name:10} {m['accuracy']:8.3f} {m['macro_f1']:8.3f} {m['log_loss']:8.4f} {ic:>7}")
    if result["top_features"]:
        top = ", ".join(f"{f['feature']} ({f['gain']:.0%})" for f in result["top_features"][:5])
        print(f"   top features by gain: {top}")
