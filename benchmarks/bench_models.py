"""Model figures: train_model's training time per kind with the DEFAULT settings, on the CPU and, when
CUDA is present, on the GPU, with the GPU speed-up measured in the same run.

    python benchmarks/bench_models.py [--kinds xgboost lstm ensemble] [--devices cpu cuda]
                                      [--lstm-epochs-cap N | --quick] [--throughput-batches 3]

Data: the 10 bundled sample assets, 1h, offline, TrainRequest defaults (365 days, 4 expanding folds, horizon
24, default XGBParams and LSTMParams). Each run gets a fresh temporary home whose feature set is built first
and timed on its own ("features s"), so the training figure excludes it (train() then reads the stored set).

The default LSTM (3 layers x 256, 60-bar sequences, 16,384 sequences per epoch, up to 10 epochs, 4 folds and
the kept model) takes an hour or more on a 2-core CPU. So, for each device, the LSTM's throughput is always
measured first, on the default architecture and the bundled data: training sequences/s (the median over
--throughput-batches batches of the default size, timed one by one after a warm-up batch) and inference rows/s
(the median over chunks of --infer-rows test rows), each with its range, since a busy machine makes them noisy.
From those and the walk-forward split sizes a full run is ESTIMATED (every fit running all its epochs, and
every fit stopped at the first epoch that patience allows). --lstm-epochs-cap N (or --quick, N = 1) caps the
LSTM's epochs for a measured partial run; such rows are labelled with the cap, are not the default setting,
and print the estimate for the same cap next to the measurement. The throughput part drives LSTMLearner's own
batch code (_inputs, _train_epoch, _outputs) so that it times what fit() runs. "cpu/wall" is the process's CPU
seconds per training second: well under the thread count on a CPU run means other work took a share.
"""

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mcp_trader.config import Settings
from mcp_trader.data.sources.sample import ASSETS
from mcp_trader.features.dataset import build_feature_set
from mcp_trader.home import Home
from mcp_trader.models.base import class_weights, silent
from mcp_trader.models.data import LabelSpec, training_data
from mcp_trader.models.lstm import LSTMLearner, LSTMNet, _nan_mean_std
from mcp_trader.models.params import LSTMParams
from mcp_trader.models.training import TEST_SHARE, VAL_SHARE, TrainRequest, _feature_request, train
from mcp_trader.models.walkforward import final_split, walk_forward

SYMBOLS = [f"{base}/USDT" for base in ASSETS[:10]]


def timed(call, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    call()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


async def features(home_dir: Path, request: TrainRequest):
    home = Home(Settings(home=home_dir, offline=True))
    try:
        started = time.perf_counter()
        fs = await build_feature_set(home, _feature_request(request))
        return fs, time.perf_counter() - started
    finally:
        await home.close()


async def timed_training(request: TrainRequest) -> tuple[float, float, float, object]:
    """Feature build seconds, training seconds, CPU seconds per training second (all threads), the record."""
    with tempfile.TemporaryDirectory() as tmp:
        _, built = await features(Path(tmp), request)
        home = Home(Settings(home=Path(tmp), offline=True))
        try:
            started, cpu = time.perf_counter(), time.process_time()
            record = await train(home, request, silent)
            took = time.perf_counter() - started
            return built, took, (time.process_time() - cpu) / took, record
        finally:
            await home.close()


def lstm_throughput(data, train_rows, test_rows, device: str, batches: int, infer_rows: int) -> dict:
    """Default-architecture LSTM: training sequences/s and inference rows/s through the learner's own code."""
    p = LSTMParams()
    learner = LSTMLearner(p, device)
    torch.manual_seed(p.seed)
    learner.mean, learner.std = _nan_mean_std(data.X[train_rows])
    learner.net = LSTMNet(len(data.features) + 1, p.hidden, p.layers, p.dropout).to(device)
    setup = timed(lambda: learner._inputs(data), device)  # the scaled, padded cube, once per fit
    weights = torch.tensor(class_weights(data.y[train_rows]), dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam(learner.net.parameters(), lr=p.learning_rate)
    scaler = torch.amp.GradScaler(device, enabled=learner._fp16)
    warm = 3 if device == "cuda" else 1
    rows = np.random.default_rng(p.seed).choice(train_rows, (warm + batches) * p.batch_size, replace=False)
    learner._train_epoch(data, rows[:warm * p.batch_size], weights, optimizer, scaler, 0, silent)
    per_batch = []
    for start in range(warm * p.batch_size, len(rows), p.batch_size):
        per_batch.append(timed(lambda s=start: learner._train_epoch(
            data, rows[s:s + p.batch_size], weights, optimizer, scaler, 0, silent), device) / p.batch_size)
    step = learner._infer_batch
    infer = test_rows[:max(infer_rows, step)]
    learner._outputs(data, infer[:step])  # warm-up
    per_row = [timed(lambda s=s: learner._outputs(data, infer[s:s + step]), device) / len(infer[s:s + step])
               for s in range(0, len(infer), step)]
    train, inference = 1 / np.median(per_batch), 1 / np.median(per_row)
    spread = f"{1 / max(per_batch):,.0f}-{1 / min(per_batch):,.0f}"
    return {"setup": setup, "train": train, "infer": inference, "train_spread": spread,
            "infer_spread": f"{1 / max(per_row):,.0f}-{1 / min(per_row):,.0f}",
            "timed_train": f"{len(per_batch)} batches of {p.batch_size}", "timed_infer": f"{len(infer):,} rows"}


def lstm_estimate(rate: dict, fits: list[tuple[int, int, int]], epochs: int,
                  samples: int = LSTMParams().samples_per_epoch) -> float:
    """Seconds for the LSTM part of train(): per fit, `epochs` of sampled training plus a validation pass each,
    one more validation pass for the temperature, and the test rows' prediction."""
    total = 0.0
    for n_train, n_val, n_test in fits:
        per_epoch = min(samples, n_train) / rate["train"] + n_val / rate["infer"]
        total += rate["setup"] + epochs * per_epoch + (n_val + n_test) / rate["infer"]
    return total


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min" if seconds >= 90 else f"{seconds:,.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kinds", nargs="+", default=["xgboost", "lstm", "ensemble"],
                        choices=["xgboost", "lstm", "ensemble"])
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"],
                        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--lstm-epochs-cap", type=int, help="cap the LSTM's epochs: a measured partial run")
    parser.add_argument("--quick", action="store_true", help="the same as --lstm-epochs-cap 1")
    parser.add_argument("--throughput-batches", type=int, default=3, help="timed training batches (CUDA: >= 20)")
    parser.add_argument("--infer-rows", type=int, default=4096)
    args = parser.parse_args()
    cap = 1 if args.quick else args.lstm_epochs_cap
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda: this machine has no CUDA device")
    base = TrainRequest(symbols=SYMBOLS)
    lstm = LSTMParams() if cap is None else LSTMParams(epochs=min(cap, LSTMParams().epochs))
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"
    print(f"{len(SYMBOLS)} bundled assets, {base.timeframe}, offline, TrainRequest defaults: 365 days, {base.folds} "
          f"{base.scheme} folds, horizon {base.horizon}; {os.cpu_count()} CPUs, torch {torch.get_num_threads()} "
          f"threads{gpu}; load average {os.getloadavg()[0]:.1f} (other work on the machine skews the figures)")

    with tempfile.TemporaryDirectory() as tmp:
        fs, cold = asyncio.run(features(Path(tmp), base))
    started = time.perf_counter()
    data = training_data(fs, base.variant, LabelSpec(horizon=base.horizon, barrier=base.barrier))
    labels = time.perf_counter() - started
    splits = walk_forward(data, base.folds, base.horizon, base.scheme, TEST_SHARE, VAL_SHARE)
    final = final_split(data, base.horizon, VAL_SHARE)
    fits = [(len(s.train), len(s.val), len(s.test)) for s in splits] + [(len(final.train), len(final.val), 0)]
    print(f"feature set {fs.record.rows:,} rows x {len(fs.record.columns)} columns: first build {cold:.2f} s "
          f"(cold: collection, numba cache); labels and matrix {labels:.2f} s; {len(data.labeled):,} labelled rows")
    print("walk-forward fits (train / val / test rows): " + "; ".join(f"{a:,}/{b:,}/{c:,}" for a, b, c in fits))

    p, rates = LSTMParams(), {}
    print(f"\nLSTM throughput, default architecture ({p.layers} x {p.hidden}, {p.seq_len}-bar sequences, batch "
          f"{p.batch_size}, {len(data.features) + 1} inputs):")
    for device in args.devices:
        batches = max(args.throughput_batches, 20) if device == "cuda" else args.throughput_batches
        rate = rates[device] = lstm_throughput(data, splits[-1].train, splits[-1].test, device, batches,
                                               args.infer_rows)
        epoch = min(p.samples_per_epoch, fits[-1][0]) / rate["train"]
        high = lstm_estimate(rate, fits, p.epochs)
        low = lstm_estimate(rate, fits, min(p.patience + 1, p.epochs))
        print(f"  {device:<4}: training {rate['train']:8,.0f} sequences/s (median batch of {rate['timed_train']}; "
              f"range {rate['train_spread']}), inference {rate['infer']:,.0f} rows/s (median chunk of "
              f"{rate['timed_infer']}; range {rate['infer_spread']}); cube setup {rate['setup']:.2f} s")
        print(f"        one epoch of {p.samples_per_epoch:,} sequences ~ {minutes(epoch)}")
        print(f"        ESTIMATE, full default LSTM run ({len(fits)} fits): {minutes(high)} if every fit runs all "
              f"{p.epochs} epochs; {minutes(low)} if early stopping ends each at epoch {p.patience + 1}")
    if "cuda" in rates and "cpu" in rates:
        print(f"  GPU vs CPU (same run): training x{rates['cuda']['train'] / rates['cpu']['train']:.1f}, "
              f"inference x{rates['cuda']['infer'] / rates['cpu']['infer']:.1f}")

    print(f"\n{'kind':<22} {'device':<6} {'features s':>10} {'training s':>10} {'cpu/wall':>8} {'test rows':>9} "
          f"{'OOS log loss':>12} {'beats baselines':>15}")
    seconds = {}
    for kind in args.kinds:
        for device in args.devices:
            request = base.model_copy(update={"kind": kind, "device": device, "lstm": lstm})
            built, took, cpu, record = asyncio.run(timed_training(request))
            seconds[kind, device] = took
            label = kind if kind == "xgboost" or cap is None else f"{kind} (epochs <= {lstm.epochs})"
            print(f"{label:<22} {record.device:<6} {built:10.2f} {took:10.2f} {cpu:8.2f} {record.overall.rows:9,} "
                  f"{record.overall.log_loss:12.4f} {'yes' if record.verdict.beats_baselines else 'no':>15}",
                  flush=True)
            if kind == "lstm" and cap is not None and device in rates:
                guess = lstm_estimate(rates[device], fits, lstm.epochs)
                print(f"{'':<22} {'':<6} the throughput estimate of this capped run: {minutes(guess)} "
                      f"({lstm.epochs} epochs in every fit; measured/estimate {took / guess:.2f})", flush=True)
    for kind in args.kinds:
        if (kind, "cpu") in seconds and (kind, "cuda") in seconds:
            print(f"speed-up {kind}: GPU x{seconds[kind, 'cpu'] / seconds[kind, 'cuda']:.1f} vs CPU (same run)")
    for device, rate in rates.items():
        if (("ensemble" not in args.kinds or cap is not None) and ("xgboost", device) in seconds):
            total = seconds["xgboost", device] + lstm_estimate(rate, fits, p.epochs)
            print(f"ESTIMATE, full default ensemble on {device}: ~{minutes(total)} (measured xgboost + the LSTM "
                  f"estimate above, all epochs)")


if __name__ == "__main__":
    main()
