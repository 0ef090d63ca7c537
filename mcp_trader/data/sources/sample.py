"""The bundled sample: real Binance spot hourly candles for 14 assets, 2021-01 to 2024-09."""

from functools import cache
from importlib import resources

import pandas as pd
import pyarrow.csv as pacsv

from mcp_trader.data import candles
from mcp_trader.data.sources.base import Fetched, PageProgress, Source, SourceLacksData, Window
from mcp_trader.data.symbols import Symbol
from mcp_trader.timefmt import ms_to_time, to_ms

ASSETS = ("BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "LTC", "DOT", "NEAR", "BCH", "XTZ")
SYMBOLS = tuple(f"{a}/USDT" for a in ASSETS)
HOUR_MS = 3_600_000


@cache
def load(base: str) -> pd.DataFrame:
    """All hourly candles of one bundled asset (cached: the files never change)."""
    path = resources.files("mcp_trader.data") / "sample" / f"{base}_USDT-1h.csv.gz"
    with resources.as_file(path) as file:
        table = pacsv.read_csv(file)
    frame = table.to_pandas()
    frame.index = pd.to_datetime(frame.pop("timestamp"), unit="ms", utc=True).dt.as_unit("ms").rename("time")
    return frame[list(candles.COLUMNS)].astype("float64")


class SampleSource(Source):
    name = "sample"
    native_timeframes = ("1h",)

    async def lists(self, symbol: Symbol) -> bool:
        return symbol.base in ASSETS and symbol.quote == "USDT"

    def adjust_window(self, symbol: Symbol, timeframe: str, window: Window) -> tuple[Window, str | None]:
        if not window.recent or symbol.base not in ASSETS:
            return window, None
        frame = load(symbol.base)
        end = int(to_ms(frame.index)[-1]) + HOUR_MS
        if window.end_ms <= end:
            return window, None
        moved = Window(end - (window.end_ms - window.start_ms), end, recent=True)
        last = ms_to_time(end - HOUR_MS).strftime("%Y-%m-%d")
        return moved, f"the bundled sample ends {last}: served its last days instead of the days to now"

    async def fetch(
        self, symbol: Symbol, timeframe: str, window: Window, progress: PageProgress | None = None
    ) -> Fetched:
        frame = candles.between(load(symbol.base), window.start_ms, window.end_ms)
        if frame.empty:
            raise SourceLacksData("the bundled sample covers 2021-01-01 to 2024-09-30 only")
        note = "bundled sample: Binance spot candles"
        if symbol.market == "perp":
            note += " standing in for the perpetual"
        if progress:
            await progress(len(frame))
        return Fetched(frame, window, note)
