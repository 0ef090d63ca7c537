"""Walk-forward splits in time with purging and an embargo.

The labelled bars are cut into a first training stretch and `folds` consecutive test blocks.
For each block, training uses only bars before it, minus an embargo of `embargo` bars (at least
the label horizon) right before the block, and minus every row whose label was decided at or
after the embargo starts (purging). The last part of the training stretch is held out, behind
the same gap, as the validation rows that early stopping, calibration and ensemble weights use;
test rows are never seen before they are scored. "expanding" keeps every earlier bar in training,
"rolling" keeps a window as long as the first fold's.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mcp_trader.errors import InputError
from mcp_trader.models.data import TrainingData

Scheme = Literal["expanding", "rolling"]
MIN_TRAIN_ROWS = 200
MIN_TEST_BARS = 20


@dataclass(frozen=True)
class Split:
    """Row indices into TrainingData, and the bar ranges [start, stop) they came from."""

    number: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_bars: tuple[int, int]
    val_bars: tuple[int, int]
    test_bars: tuple[int, int]
    purged: int  # labelled rows dropped from training and validation by purging and the embargo


def walk_forward(
    data: TrainingData, folds: int, embargo: int, scheme: Scheme = "expanding", test_share: float = 0.5,
    val_share: float = 0.2,
) -> list[Split]:
    if embargo < data.horizon:
        raise InputError("embargo", f"{embargo} bars is shorter than the label horizon ({data.horizon})",
                         "at least the horizon")
    labeled = data.labeled
    if len(labeled) == 0:
        raise InputError("days", "no bar has a label in this span", "a longer span (days)")
    first, last = int(data.bar[labeled[0]]), int(data.bar[labeled[-1]]) + 1
    test_start = last - int((last - first) * test_share)
    edges = np.linspace(test_start, last, folds + 1).round().astype(int)
    _check_size(data, first, edges, embargo)
    splits = []
    for k in range(folds):
        start = first if scheme == "expanding" else max(first, edges[k] - (test_start - first))
        splits.append(_split(data, k + 1, start, int(edges[k]), int(edges[k + 1]), embargo, val_share))
    return splits


def final_split(data: TrainingData, embargo: int, val_share: float = 0.2) -> Split:
    """Every labelled row for the model that is kept: training and validation, no test."""
    labeled = data.labeled
    first = int(data.bar[labeled[0]])
    stop = int(data.t1[labeled].max()) + 1  # every label is decided before it: no test follows, none is purged
    return _split(data, 0, first, stop + embargo, stop + embargo, embargo, val_share)


def _split(data: TrainingData, number: int, start: int, test_start: int, test_stop: int, embargo: int,
           val_share: float) -> Split:
    labeled = data.labeled
    bar, t1 = data.bar[labeled], data.t1[labeled]
    pool_stop = test_start - embargo
    val_start = pool_stop - int((pool_stop - start) * val_share)
    train_stop = val_start - embargo
    train = labeled[(bar >= start) & (bar < train_stop) & (t1 < train_stop)]
    val = labeled[(bar >= val_start) & (bar < pool_stop) & (t1 < pool_stop)]
    test = labeled[(bar >= test_start) & (bar < test_stop)]
    in_pool = int(np.sum((bar >= start) & (bar < test_start)))
    return Split(
        number=number, train=train, val=val, test=test, train_bars=(start, train_stop),
        val_bars=(val_start, pool_stop), test_bars=(test_start, test_stop), purged=in_pool - len(train) - len(val),
    )


def _check_size(data: TrainingData, first: int, edges: np.ndarray, embargo: int) -> None:
    folds = len(edges) - 1
    first_train = (edges[0] - first - 2 * embargo) * 0.8 * len(data.symbols)
    shortest_test = int(np.diff(edges).min())
    if shortest_test < max(MIN_TEST_BARS, embargo) or first_train < MIN_TRAIN_ROWS:
        bars = int(edges[-1] - first)
        raise InputError(
            "days",
            f"{bars} labelled bars are too few for {folds} walk-forward folds with an embargo of {embargo} bars "
            f"(each test block would have {shortest_test} bars; each needs at least {max(MIN_TEST_BARS, embargo)}, "
            f"and the first training stretch at least {MIN_TRAIN_ROWS} rows)",
            "a longer span (days), fewer folds, or a shorter horizon",
        )
