"""Prediction latency, native against ONNX Runtime, through each side's whole predict_proba (inputs assembled,
model run, calibrated probabilities out), as percentiles of wall-clock times."""

from collections.abc import Callable
from time import perf_counter

import numpy as np

from mcp_trader.export.records import LatencyCase, Timing


def timing(call: Callable[[int], object], runs: int, budget_s: float, min_runs: int = 5) -> Timing:
    """p50 / p99 of `call(i)` over up to `runs` calls, fewer (at least min_runs) when the budget runs out;
    one warm-up call first, so caches both sides keep (the LSTM's padded cube) are built before timing."""
    call(0)
    times, deadline = [], perf_counter() + budget_s
    for i in range(runs):
        started = perf_counter()
        call(i)
        times.append(perf_counter() - started)
        if i + 1 >= min_runs and perf_counter() > deadline:
            break
    ms = np.asarray(times) * 1000
    return Timing(p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)), runs=len(ms))


def case(native: Callable, onnx: Callable, data, rows: np.ndarray, batch: int, runs: int,
         budget_s: float) -> LatencyCase:
    """`batch` rows per call: a sliding single row (batch 1), or a fixed block of `batch` rows."""
    if batch == 1:
        def pick(i: int) -> np.ndarray:
            return rows[i % len(rows):i % len(rows) + 1]
    else:
        block = rows[:batch]

        def pick(i: int) -> np.ndarray:
            return block

    a = timing(lambda i: native(data, pick(i)), runs, budget_s)
    b = timing(lambda i: onnx(data, pick(i)), runs, budget_s)
    return LatencyCase(rows=len(pick(0)), native=a, onnxruntime=b, speedup_p50=a.p50_ms / max(b.p50_ms, 1e-9))
