"""Feature-importance bar chart (PNG), drawn on matplotlib's Agg canvas without pyplot's global state."""

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mcp_trader.models.records import Importance

TOP = 20


def importance_chart(importances: list[Importance], title: str) -> bytes:
    top = importances[:TOP][::-1]  # barh draws bottom-up: the most important feature ends on top
    figure = Figure(figsize=(10, 0.32 * len(top) + 1.6), layout="constrained")
    FigureCanvasAgg(figure)
    gain_ax, shap_ax = figure.subplots(1, 2, sharey=True)
    names = [i.feature for i in top]
    gain_ax.barh(names, [i.gain for i in top], color="#3b6ea5")
    gain_ax.set_xlabel("share of total split gain")
    shap_ax.barh(names, [i.shap for i in top], color="#c0504d")
    shap_ax.set_xlabel("mean |SHAP| (log-odds, summed over classes)")
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
