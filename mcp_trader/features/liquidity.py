"""Features for new or thin assets: how long they have traded here and how liquid they are.

- listing_age: bars since the asset's first candle in the feature set's span (gaps included). For an
  asset listed inside the span that is its age on the venue; for an older one it counts from the
  span's start, so compare it across assets of the same feature set, not across feature sets.
- history_bars: candles available up to and including this bar (gaps excluded).
- amihud_{w}: Amihud illiquidity, the mean of |return| / dollar volume, per $1M traded.
- spread_{w}: the Abdi–Ranaldo (2017) bid-ask spread estimate from close, high and low:
  s² = 4·E[(c₋₁ − η₋₁)(c₋₁ − η)], with c the log close and η the log mid-range (high·low)^½.
  The paper pairs a close with the next bar's mid-range; here bar t uses bars t−1 and t so that it
  never looks ahead. Negative window means are set to zero, as in the paper.
Both window statistics use the shortest window and skip missing bars (see rolling.py).
"""

import numpy as np

from mcp_trader.features.panel import Panel
from mcp_trader.features.rolling import rolling_mean
from mcp_trader.features.spec import FeatureSpec


def columns(spec: FeatureSpec) -> list[str]:
    return ["listing_age", "history_bars", f"amihud_{spec.shortest}", f"spread_{spec.shortest}"]


def compute(panel: Panel, spec: FeatureSpec, log_ret: np.ndarray) -> dict[str, np.ndarray]:
    present = panel.present
    started = np.cumsum(present, axis=0) > 0
    first = np.argmax(present, axis=0)
    age = np.arange(panel.shape[0])[:, None] - first[None, :]
    window = spec.bars[spec.shortest]
    with np.errstate(invalid="ignore", divide="ignore"):
        dollars = panel.close * panel.volume
        impact = np.where(dollars > 0, np.abs(np.expm1(log_ret)) / dollars * 1e6, np.nan)
        c, mid = np.log(panel.close), 0.5 * (np.log(panel.high) + np.log(panel.low))
        term = np.full(panel.shape, np.nan)
        term[1:] = 4.0 * (c[:-1] - mid[:-1]) * (c[:-1] - mid[1:])
        spread = np.sqrt(np.maximum(rolling_mean(term, window), 0.0))  # np.maximum keeps NaN as NaN
    return {
        "listing_age": np.where(started, age, np.nan).astype(np.float64),
        "history_bars": np.cumsum(present, axis=0).astype(np.float64),
        f"amihud_{spec.shortest}": rolling_mean(impact, window),
        f"spread_{spec.shortest}": spread,
    }
