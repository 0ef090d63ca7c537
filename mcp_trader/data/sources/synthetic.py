"""Synthetic candles: correlated assets, fat tails, volatility clustering, volume that follows moves.

Each asset's hourly log return is beta * market + idiosyncratic, both GARCH(1,1) with Student-t
shocks. Paths start at a fixed origin and are seeded by (seed, asset), so the same timestamp always
gets the same candle whatever window or set of assets is asked for. Every result derived from this
source is marked synthetic.
"""

import math
import zlib
from functools import lru_cache

import numpy as np
import pandas as pd

from mcp_trader.data import candles
from mcp_trader.data.sources.base import Fetched, PageProgress, Source, SourceLacksData, Window
from mcp_trader.data.symbols import Symbol

ORIGIN_MS = int(pd.Timestamp("2015-01-01", tz="UTC").value // 1_000_000)
HOUR_MS = 3_600_000
NU = 5.0  # Student-t degrees of freedom: excess kurtosis well above a normal's
ALPHA, BETA = 0.08, 0.90
MARKET_VOL, IDIO_VOL = 0.005, 0.004  # hourly, unconditional
START_PRICES = {"BTC": 30_000.0, "ETH": 2_000.0, "BNB": 300.0, "SOL": 40.0, "XRP": 0.5, "DOGE": 0.08}


def _garch_t(rng: np.random.Generator, n: int, vol: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns (shocks in units of conditional sigma, conditional sigma) for n steps."""
    z = rng.standard_t(NU, n) / math.sqrt(NU / (NU - 2))
    omega = vol**2 * (1 - ALPHA - BETA)
    sigma2 = np.empty(n)
    s2 = vol**2
    for t, shock in enumerate(z.tolist()):
        sigma2[t] = s2
        s2 = omega + (ALPHA * shock * shock + BETA) * s2
    return z, np.sqrt(sigma2)


@lru_cache(maxsize=4)
def _market(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The market factor's returns and conditional sigma."""
    z, sigma = _garch_t(np.random.default_rng([seed, 0]), n, MARKET_VOL)
    return z * sigma, sigma


def _asset_frame(seed: int, base: str, n: int) -> pd.DataFrame:
    key = zlib.crc32(base.encode())

    def stream(part: int) -> np.random.Generator:
        # One stream per component: a prefix of n draws never depends on n, so any window agrees.
        return np.random.default_rng([seed, key, part])

    market, market_sigma = _market(seed, n)
    beta = 0.7 + 0.6 * stream(0).random()
    z, sigma = _garch_t(stream(1), n, IDIO_VOL)
    total_sigma = np.hypot(beta * market_sigma, sigma)
    returns = beta * market + z * sigma - 0.5 * total_sigma**2  # zero drift of the price itself
    start = START_PRICES.get(base, 10 ** (key % 5 - 1))
    close = start * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(stream(2).normal(0, 0.5, n)) * total_sigma)
    low = np.minimum(open_, close) * np.exp(-np.abs(stream(3).normal(0, 0.5, n)) * total_sigma)
    surprise = np.abs(returns) / total_sigma
    quote_volume = 2e6 * np.exp(0.6 * surprise + 0.3 * stream(4).normal(0, 1, n))
    index = pd.to_datetime(ORIGIN_MS + HOUR_MS * np.arange(n), unit="ms", utc=True).rename("time")
    data = {"open": open_, "high": high, "low": low, "close": close, "volume": quote_volume / close}
    return pd.DataFrame(data, index=index.as_unit("ms"))


class SyntheticSource(Source):
    name = "synthetic"
    synthetic = True
    native_timeframes = ("1h",)

    def __init__(self, seed: int):
        self.seed = seed

    async def lists(self, symbol: Symbol) -> bool:
        return True

    async def fetch(
        self, symbol: Symbol, timeframe: str, window: Window, progress: PageProgress | None = None
    ) -> Fetched:
        if window.end_ms <= ORIGIN_MS:
            raise SourceLacksData("synthetic history starts 2015-01-01")
        n = (window.end_ms - ORIGIN_MS + HOUR_MS - 1) // HOUR_MS
        frame = candles.between(_asset_frame(self.seed, symbol.base, n), window.start_ms, window.end_ms)
        if progress:
            await progress(len(frame))
        return Fetched(frame, window, f"SYNTHETIC data (seed {self.seed}): not market prices")
