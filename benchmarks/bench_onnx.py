"""ONNX figures: prediction latency of ONNX Runtime against native XGBoost and PyTorch, in the same run.

    python benchmarks/bench_onnx.py [--symbols 5] [--days 365] [--single-runs 1000] [--batch-runs 200]
                                    [--budget-s 20] [--quick]

An ensemble (XGBoost + LSTM) is trained offline on the bundled sample in a temporary home through
mcp_trader.models.training.train: default XGBoost settings, and the DEFAULT LSTM architecture (3 layers x 256,
60-bar sequences) trained for one short epoch, since latency depends on the network's size, not on how long it
trained (--quick: 1 layer x 32, 16 bars). It is exported with export_model (parity checked on its held-out rows;
the figures are printed), and each part is timed on one row and on a block of 1,000 held-out rows, at two
levels: end to end (predict_proba: inputs assembled, model run, calibrated probabilities out; the LSTM's padded
cube is cached on both sides after a warm-up call) and the model call alone (XGBoost: booster.inplace_predict on
the array vs session.run on it; LSTM: the torch module on a ready tensor vs session.run). p50 and p99
are over the timed calls (at least 20, at most the runs asked for or what --budget-s allows).
"""

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import xgboost as xgb

from mcp_trader.config import Settings
from mcp_trader.data.sources.sample import ASSETS
from mcp_trader.export.exporter import export_model
from mcp_trader.export.heldout import held_out
from mcp_trader.export.latency import timing
from mcp_trader.export.predictor import OnnxPredictor
from mcp_trader.export.records import ExportRequest
from mcp_trader.home import Home
from mcp_trader.models.params import LSTMParams, XGBParams
from mcp_trader.models.sequences import padded_inputs, windows
from mcp_trader.models.training import TrainRequest, load_learner, train

QUICK_LSTM = {"hidden": 32, "layers": 1, "seq_len": 16}


async def trained(home: Home, args) -> tuple:
    lstm = LSTMParams(epochs=1, samples_per_epoch=512, **(QUICK_LSTM if args.quick else {}))
    request = TrainRequest(kind="ensemble", symbols=[f"{a}/USDT" for a in ASSETS[:args.symbols]], days=args.days,
                           as_of="2024-09-30", folds=2, device="cpu", xgboost=XGBParams(), lstm=lstm)
    started = time.perf_counter()
    record = await train(home, request)
    print(f"trained {record.id} in {time.perf_counter() - started:.0f} s: {len(record.symbols)} assets, "
          f"{record.timeframe}, {len(record.features)} features, xgboost {record.final_fit['xgboost']['rounds']} "
          f"rounds, lstm {lstm.layers} x {lstm.hidden}, seq_len {lstm.seq_len}")
    started = time.perf_counter()
    cert = await export_model(home, ExportRequest(model_id=record.id))
    print(f"exported {cert.id} in {time.perf_counter() - started:.1f} s; parity on {cert.parity.held_out.rows} "
          f"held-out rows (threshold {cert.parity.threshold:.1%}):")
    for f in cert.parity.outputs:
        print(f"  {f.output:<22} max relative diff {f.max_relative_diff:.2e}, max absolute {f.max_absolute_diff:.2e}")
    registry = await home.models()
    held = await held_out(home, record, registry.folder(record.id), 5000)
    native = load_learner("ensemble", registry.folder(record.id), "cpu")
    predictor = OnnxPredictor.load(home.settings.exports_dir, cert.id)
    return held, native, predictor


def sliding(rows: np.ndarray, n: int):
    block = rows[:n]
    return (lambda i: rows[i % len(rows):i % len(rows) + 1]) if n == 1 else (lambda i: block)


def end_to_end(held, native, predictor, args) -> list[tuple]:
    data, out = held.data, []
    for part in ("xgboost", "lstm"):
        learner = getattr(native, part)
        for n in (1, 1000):
            pick, runs = sliding(held.rows, n), args.single_runs if n == 1 else args.batch_runs
            a = timing(lambda i, pick=pick, learner=learner: learner.predict_proba(data, pick(i)), runs,
                       args.budget_s, 20)
            b = timing(lambda i, pick=pick, part=part: predictor.predict_proba(data, pick(i), part), runs,
                       args.budget_s, 20)
            out.append((part, n, a, b))
    return out


def model_only(held, native, predictor, args) -> list[tuple]:
    """The engines alone, on inputs prepared before timing."""
    data, out = held.data, []
    booster, lstm = native.xgboost.booster, native.lstm
    xgb_session, lstm_session = predictor.session("xgboost"), predictor.session("lstm")
    seq_len = lstm.params.seq_len
    padded = padded_inputs(data, lstm.mean, lstm.std, seq_len)
    lstm.net.eval()

    def torch_call(tensor: torch.Tensor):
        with torch.inference_mode():
            return lstm.net(tensor)

    for n in (1, 1000):
        runs = args.single_runs if n == 1 else args.batch_runs
        x = np.ascontiguousarray(data.X[held.rows[:n]])
        # inplace_predict, not predict on a reused DMatrix: that one answers from XGBoost's prediction cache
        a = timing(lambda i, x=x: booster.inplace_predict(x, predict_type="margin"), runs, args.budget_s, 20)
        b = timing(lambda i, x=x: xgb_session.run(["probabilities"], {"features": x}), runs, args.budget_s, 20)
        out.append(("xgboost", n, a, b))
    for n in (1, 1000):
        runs = args.single_runs if n == 1 else args.batch_runs
        seq = windows(padded, data, held.rows[:n], seq_len)
        tensor = torch.from_numpy(seq)
        a = timing(lambda i, t=tensor: torch_call(t), runs, args.budget_s, 20)
        b = timing(lambda i, s=seq: lstm_session.run(["probabilities", "return"], {"sequences": s}), runs,
                   args.budget_s, 20)
        out.append(("lstm (torch)", n, a, b))
    return out


def table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    print(f"{'model':<14}{'rows':>6} | {'native p50':>12}{'p99':>12} | {'onnxrt p50':>12}{'p99':>12} | "
          f"{'speed-up p50':>12}{'p99':>7} | runs")
    for name, n, a, b in rows:
        print(f"{name:<14}{n:>6} | {a.p50_ms:>10.3f}ms{a.p99_ms:>10.3f}ms | {b.p50_ms:>10.3f}ms{b.p99_ms:>10.3f}ms | "
              f"{a.p50_ms / b.p50_ms:>11.1f}x{a.p99_ms / b.p99_ms:>6.1f}x | {a.runs}/{b.runs}")


async def main(args) -> None:
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), xgboost {xgb.__version__}, onnxruntime {onnxruntime.__version__} "
          f"(providers {onnxruntime.get_available_providers()})")
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Settings(home=Path(tmp), offline=True))
        try:
            held, native, predictor = await trained(home, args)
            print(f"ONNX Runtime sessions on {predictor.used_providers}; native models on the CPU")
            table("end to end: predict_proba(data, rows), the same contract on both sides",
                  end_to_end(held, native, predictor, args))
            table("model call only: prepared inputs, engine run", model_only(held, native, predictor, args))
            print("\nspeed-up = native / ONNX Runtime: above 1x means ONNX Runtime is faster")
        finally:
            await home.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=5, help="bundled sample assets (2 to 14)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--single-runs", type=int, default=1000)
    parser.add_argument("--batch-runs", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=20.0, help="seconds per side and case, at most")
    parser.add_argument("--quick", action="store_true", help="a small LSTM (1 x 32, 16 bars)")
    asyncio.run(main(parser.parse_args()))
