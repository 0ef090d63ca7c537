"""The equity / drawdown chart of a run (PNG), on matplotlib's Agg canvas without pyplot's global state."""

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def equity_chart(times: pd.DatetimeIndex, equity: np.ndarray, baseline: np.ndarray, drawdown: np.ndarray,
                 title: str) -> bytes:
    figure = Figure(figsize=(11, 6.5), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    x = times.tz_convert("UTC").tz_localize(None)
    top.plot(x, equity, color="#3b6ea5", linewidth=1.2, label="strategy")
    top.plot(x, baseline, color="#999999", linewidth=1.0, label="buy and hold, same assets and costs")
    top.set_ylabel("equity")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.fill_between(x, drawdown * 100, 0, color="#c0504d", alpha=0.6, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
