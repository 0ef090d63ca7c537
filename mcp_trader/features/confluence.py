"""Cross-asset confluence: how much an asset moves with, and signals like, the rest of the market.

For each asset i and bar t, with windows w (in bars of the timeframe):
- corr_btc_w, corr_mkt_w: correlation of i's log returns with BTC's, and with the equal-weight
  return of the *other* assets (leave-one-out, so that i does not correlate with itself);
- corr_mean_w: the mean of i's pairwise correlations with each other asset;
- volume_abnormal: 1 when i's log-volume z-score over the longest window exceeds 2;
  volume_confluence: the share of the other assets whose volume is abnormal at t;
- align_rsi, align_macd, align_bb: the share of other assets whose signal state agrees with i's,
  where the states are sign(RSI − 50), sign(MACD histogram) and sign(%B − 0.5);
  tech_alignment is their mean;
- mom_align_w: the share of other assets whose return over w has the same sign as i's;
  mom_alignment is their mean across horizons.

The confluence score combines them into one number in [−1, 1]:
  direction  = mean of i's own states (RSI, MACD, Bollinger, and the sign of each momentum horizon),
               in [−1, 1]: where i's own signals point;
  alignment  = mean of the matching agreement shares (align_* and mom_align_*), in [0, 1]: how much
               of the market points the same way;
  confluence_score = direction × alignment.
+1 means every signal of the asset is bullish and every other asset agrees; −1 the same bearish;
near 0 means its own signals are mixed or the market disagrees. Shares and means use only assets
and signals present at t; with nothing to compare, the value is NaN.
"""

import numpy as np

from mcp_trader.features.rolling import rolling_corr
from mcp_trader.features.spec import FeatureSpec

ABNORMAL_Z = 2.0


def columns(spec: FeatureSpec) -> list[str]:
    w = spec.windows
    return [
        *(f"corr_btc_{x}" for x in w), *(f"corr_mkt_{x}" for x in w), *(f"corr_mean_{x}" for x in w),
        "volume_abnormal", "volume_confluence", "align_rsi", "align_macd", "align_bb", "tech_alignment",
        *(f"mom_align_{x}" for x in w), "mom_alignment", "direction", "alignment", "confluence_score",
    ]


def compute(
    single: dict[str, np.ndarray], log_ret: np.ndarray, btc_ret: np.ndarray, spec: FeatureSpec
) -> dict[str, np.ndarray]:
    out = _correlations(log_ret, btc_ret, spec)
    z = single[f"volume_z_{spec.longest}"]
    out["volume_abnormal"] = np.where(np.isnan(z), np.nan, (z > ABNORMAL_Z).astype(np.float64))
    out["volume_confluence"] = _share_of_others(out["volume_abnormal"])
    states = {
        "rsi": np.sign(single["rsi_14"] - 50.0),
        "macd": np.sign(single["macd_hist_pct"]),
        "bb": np.sign(single["bb_pctb"] - 0.5),
        **{f"mom_{w}": np.sign(single[f"ret_{w}"]) for w in spec.windows},
    }
    agree = {name: agreement(s) for name, s in states.items()}
    for name in ("rsi", "macd", "bb"):
        out[f"align_{name}"] = agree[name]
    out["tech_alignment"] = _mean([agree["rsi"], agree["macd"], agree["bb"]])
    for w in spec.windows:
        out[f"mom_align_{w}"] = agree[f"mom_{w}"]
    out["mom_alignment"] = _mean([agree[f"mom_{w}"] for w in spec.windows])
    out["direction"] = _mean(list(states.values()))
    out["alignment"] = _mean(list(agree.values()))
    out["confluence_score"] = out["direction"] * out["alignment"]
    return out


def _correlations(log_ret: np.ndarray, btc_ret: np.ndarray, spec: FeatureSpec) -> dict[str, np.ndarray]:
    valid = ~np.isnan(log_ret)
    filled = np.where(valid, log_ret, 0.0)
    others = valid.sum(axis=1, keepdims=True) - valid
    with np.errstate(invalid="ignore", divide="ignore"):
        market = np.where(others > 0, (filled.sum(axis=1, keepdims=True) - filled) / others, np.nan)
    assets = np.arange(log_ret.shape[1])
    left, right = np.triu_indices(len(assets), k=1)
    out = {}
    for w, n in spec.bars.items():
        out[f"corr_btc_{w}"] = rolling_corr(log_ret, btc_ret[:, None], n, assets, np.zeros_like(assets))
        out[f"corr_mkt_{w}"] = rolling_corr(log_ret, market, n)
        out[f"corr_mean_{w}"] = _pair_means(rolling_corr(log_ret, log_ret, n, left, right), left, right, log_ret.shape)
    return out


def _pair_means(pair_corr: np.ndarray, left: np.ndarray, right: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    # Summed per row, not by a matrix product: BLAS kernels block by the matrix's size, so a bar's value would
    # change in its last bits with the number of bars after it, which the causality check rightly refuses.
    out = np.full(shape, np.nan)
    for i in range(shape[1]):
        pairs = pair_corr[:, (left == i) | (right == i)]
        count = (~np.isnan(pairs)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = np.where(count > 0, np.nansum(pairs, axis=1) / count, np.nan)
    return out


def agreement(states: np.ndarray) -> np.ndarray:
    """For each asset, the share of the other assets (with a state at t) whose state equals its own."""
    valid = ~np.isnan(states)
    others = valid.sum(axis=1, keepdims=True) - 1
    same = np.zeros(states.shape)
    for value in (-1.0, 0.0, 1.0):
        match = states == value
        same += match * (match.sum(axis=1, keepdims=True) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid & (others > 0), same / others, np.nan)


def _share_of_others(flags: np.ndarray) -> np.ndarray:
    """For each asset, the share of the other assets (with a value at t) whose flag is 1."""
    valid = ~np.isnan(flags)
    filled = np.where(valid, flags, 0.0)
    others = valid.sum(axis=1, keepdims=True) - valid
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(others > 0, (filled.sum(axis=1, keepdims=True) - filled) / others, np.nan)


def _mean(arrays: list[np.ndarray]) -> np.ndarray:
    """Element-wise mean of the values present; NaN where none is."""
    stack = np.stack(arrays)
    valid = ~np.isnan(stack)
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(valid, stack, 0.0).sum(axis=0) / count, np.nan)
