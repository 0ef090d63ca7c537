"""The account's equity history as a PNG (matplotlib's Agg canvas, no pyplot state)."""

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def equity_chart(history: list[dict], title: str) -> bytes:
    figure = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    if history:
        times = pd.to_datetime([h["time"] for h in history], utc=True).tz_localize(None)
        axes.plot(times, [h["equity"] for h in history], color="#3b6ea5", linewidth=1.2, label="equity")
        axes.plot(times, [h["cash"] for h in history], color="#999999", linewidth=1.0, label="cash")
        axes.legend(loc="upper left")
    else:
        axes.text(0.5, 0.5, "no equity snapshots yet: get_pnl records one", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_ylabel("USDT")
    axes.grid(alpha=0.3)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
