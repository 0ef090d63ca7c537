"""PNG charts of a study: each trial's out-of-sample Sharpe with the best so far, and parameter importances."""

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mcp_trader.optimize.records import TrialRow


def trials_chart(rows: list[TrialRow], title: str) -> bytes:
    figure = Figure(figsize=(10, 5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    done = [(r.number, r.value) for r in rows if r.state == "complete" and r.value is not None]
    pruned = [r for r in rows if r.state == "pruned"]
    ax.scatter([n for n, _ in done], [v for _, v in done], s=18, color="#3b6ea5", label="completed")
    if pruned:
        last = [r.fold_sharpes[-1] if r.fold_sharpes else 0.0 for r in pruned]
        ax.scatter([r.number for r in pruned], last, s=14, marker="x", color="#999999",
                   label="pruned (Sharpe of its last fold)")
    best, running = [], float("-inf")
    for number, value in sorted(done, key=lambda d: d[0]):
        running = max(running, value)
        best.append((number, running))
    if best:
        ax.step(*zip(*best, strict=True), where="post", color="#c0504d", label="best so far")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("trial")
    ax.set_ylabel("out-of-sample Sharpe (annualised)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    figure.suptitle(title)
    return _png(figure)


def importances_chart(importances: dict[str, float], title: str) -> bytes:
    names = list(importances)[::-1]
    figure = Figure(figsize=(8, 0.35 * len(names) + 1.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.barh(names, [importances[n] for n in names], color="#3b6ea5")
    ax.set_xlabel("importance (PED-ANOVA, share)")
    figure.suptitle(title)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
