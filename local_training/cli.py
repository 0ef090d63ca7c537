"""Shared command line of the local training scripts: the arguments, the run with a progress bar, the report.

The scripts call `main(variant=...)`; everything heavy (pandas, xgboost, torch) loads after the arguments
are read, so `--help` is instant. Bad input prints `error: <field>: <problem>` and exits 2; the first
Ctrl-C stops the run at its next progress step (no half-written model is left), a second one at once.
"""

import argparse
import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

SAMPLE_SYMBOLS = [f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "LINK", "LTC")]
INTERRUPTED = 130


def parser(variant: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"Train a {variant} model with walk-forward evaluation (the train_model tool's core) and "
        "store it under <home>/models/<id>.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    arg = p.add_argument
    arg("--symbols", nargs="+", default=SAMPLE_SYMBOLS, help="symbols, space separated")
    arg("--timeframe", default="1h", help="1h, 4h or 1d")
    arg("--kind", default="xgboost", choices=["xgboost", "lstm", "ensemble"])
    arg("--device", default="auto", choices=["auto", "cuda", "cpu"])
    arg("--horizon", type=int, default=24, help="label time limit in bars")
    arg("--barrier", type=float, default=1.0, help="barrier width in σ × √horizon")
    arg("--days", type=int, help="days of history (default 365 unless --start)")
    arg("--start", help="first bar, ISO 8601, instead of --days")
    arg("--as-of", help="last bar, ISO 8601 (default now; offline the sample ends 2024-09-30)")
    arg("--folds", type=int, default=4, help="walk-forward test blocks")
    arg("--scheme", default="expanding", choices=["expanding", "rolling"])
    arg("--embargo", type=int, help="bars between training labels and test (default the horizon)")
    arg("--sources", nargs="+", help="data sources in fallback order (default the home's)")
    arg("--market", default="perp", choices=["perp", "spot"])
    arg("--home", help="state folder (default MCP_TRADER_HOME or ~/.mcp-trader)")
    arg("--offline", action="store_true", help="no network sources: the bundled sample (or synthetic) only")
    lstm = p.add_argument_group("LSTM (lstm, ensemble; default: the LSTMParams defaults)")
    for flag, kind in (("--hidden", int), ("--layers", int), ("--seq-len", int), ("--epochs", int),
                       ("--samples-per-epoch", int), ("--batch-size", int), ("--lstm-learning-rate", float)):
        lstm.add_argument(flag, type=kind, default=argparse.SUPPRESS)
    xgb = p.add_argument_group("XGBoost (xgboost, ensemble; default: the XGBParams defaults)")
    for flag, kind in (("--n-estimators", int), ("--max-depth", int), ("--learning-rate", float)):
        xgb.add_argument(flag, type=kind, default=argparse.SUPPRESS)
    return p


def main(variant: str = "general", argv: list[str] | None = None) -> int:
    args = parser(variant).parse_args(argv)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: _interrupt(stop))
    from pydantic import ValidationError

    from mcp_trader.errors import Cancelled, InputError

    try:
        record, settings = asyncio.run(_run(args, variant, stop))
    except (InputError, ValidationError) as error:
        print(f"error: {_describe(error)}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("interrupted: no model was saved", file=sys.stderr)
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    print(report(record, settings.models_dir / record.id))
    return 0


def _interrupt(stop: threading.Event) -> None:
    if stop.is_set():
        print("\ninterrupted", file=sys.stderr)
        os._exit(INTERRUPTED)
    stop.set()
    print("\nstopping at the next step (Ctrl-C again to quit at once)", file=sys.stderr)


async def _run(args: argparse.Namespace, variant: str, stop: threading.Event):
    from tqdm import tqdm

    from mcp_trader.config import Settings
    from mcp_trader.errors import Cancelled, InputError
    from mcp_trader.home import Home
    from mcp_trader.models.device import resolve_device
    from mcp_trader.models.training import TrainRequest, train

    given = vars(args)
    pick = {name: given[name] for name in ("hidden", "layers", "seq_len", "epochs", "samples_per_epoch",
                                           "batch_size") if name in given}
    if "lstm_learning_rate" in given:
        pick["learning_rate"] = given["lstm_learning_rate"]
    request = TrainRequest(
        kind=args.kind, variant=variant, symbols=args.symbols, timeframe=args.timeframe, horizon=args.horizon,
        barrier=args.barrier, days=args.days, start=args.start, as_of=args.as_of, sources=args.sources,
        market=args.market, device=args.device, folds=args.folds, scheme=args.scheme, embargo=args.embargo,
        xgboost={k: given[k] for k in ("n_estimators", "max_depth", "learning_rate") if k in given}, lstm=pick,
    )
    if request.embargo is not None and request.embargo < request.horizon:
        raise InputError("embargo", f"{request.embargo} bars is shorter than the horizon ({request.horizon})",
                         "at least the horizon, or leave it out")
    device = resolve_device(request.device)  # no CUDA when cuda was asked: an error now, not after the features
    overrides = {"home": Path(args.home)} if args.home else {}
    if args.offline:
        overrides["offline"] = True
    settings = Settings(**overrides)  # the rest, and these when not given, from MCP_TRADER_* variables
    bar = tqdm(total=100, file=sys.stderr, unit="%", dynamic_ncols=True, mininterval=0.5,
               bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}% [{elapsed}<{remaining}{postfix}]")
    bar.set_description(f"{request.kind} {variant} on {device}")

    def progress(fraction: float, message: str) -> None:
        if stop.is_set():
            raise Cancelled("interrupted")
        bar.n = round(100 * min(max(fraction, 0.0), 1.0), 1)
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    home = Home(settings)
    try:
        record = await train(home, request, progress)
        bar.n = 100
        bar.set_postfix_str(f"model {record.id} saved")
        return record, settings
    except BaseException:
        bar.leave = False  # the error alone, not a half-filled bar above it
        raise
    finally:
        bar.close()
        await home.close()


def _describe(error) -> str:
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'arguments'}: {first['msg']}"
    return str(error)


def report(record, folder: Path) -> str:
    """The verdict, a per-fold table next to the baselines, the top features and where the model lies."""
    lines = [f"verdict: {record.verdict.summary}"]
    if record.synthetic:
        lines.append("note: trained on SYNTHETIC candles; the figures say nothing about a real market")
    lines += ["", f"{'fold':>4}  {'test span':<36} {'rows':>7}  {'scorer':<9} {'accuracy':>8} {'macro F1':>8} "
              f"{'log loss':>8} {'IC':>7}"]
    blocks = [(str(f.fold), f"{_day(f.test.start)} .. {_day(f.test.end)}", f.test_rows, f.model, f.baselines)
              for f in record.folds]
    blocks.append(("all", "", record.overall.rows, record.overall, record.baselines))
    for fold, span, rows, model, baselines in blocks:
        for i, (name, m) in enumerate({"model": model, **baselines}.items()):
            head = f"{fold:>4}  {span:<36} {rows:>7,}" if i == 0 else " " * 50
            ic = "n/a" if m.ic is None else f"{m.ic:.3f}"
            lines.append(f"{head}  {name:<9} {m.accuracy:8.3f} {m.macro_f1:8.3f} {m.log_loss:8.4f} {ic:>7}")
    lines += ["", "top features (share of gain, mean |SHAP|):"]
    lines += [f"  {i:>2}. {imp.feature:<32} {imp.gain:7.3f} {imp.shap:9.4f}"
              for i, imp in enumerate(record.importances[:10], 1)] or ["  none (an LSTM reports no importances)"]
    lines += ["", f"model id: {record.id}", f"stored:   {folder}", f"device:   {record.device}",
              f"training: {record.training_seconds:.1f} s"]
    return "\n".join(lines)


def _day(iso: str | None) -> str:
    return "-" if iso is None else iso[:16].replace("T", " ")
