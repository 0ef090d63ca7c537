"""Paper prices from the candle store: the latest stored bar of a symbol, its ATR(14), and the bars after a time.
The paper market's clock is the latest stored bar: it moves when collect_data (or the paper loop) stores new ones."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mcp_trader.data.store import CandleStore
from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.errors import InputError
from mcp_trader.features.indicators import ATR_BARS, atr_series
from mcp_trader.store.catalog import Catalog, DatasetRecord
from mcp_trader.trading.orders import Quote


@dataclass(frozen=True)
class Market:
    quote: Quote
    atr: float | None
    dataset_id: str
    synthetic: bool


class StorePrices:
    def __init__(self, catalog: Catalog, candles: CandleStore, timeframe: str):
        self.catalog = catalog
        self.candles = candles
        self.timeframe = timeframe
        self._latest: dict[str, tuple[str, Market]] = {}  # per symbol, with the content hash it was read at

    async def market(self, symbol: str) -> Market:
        record = await self._dataset(symbol)
        known = self._latest.get(symbol)
        if known is None or known[0] != record.content_hash:  # a new bar changes the dataset's hash
            known = (record.content_hash, await self._read_market(symbol, record))
            self._latest[symbol] = known
        return known[1]

    async def _read_market(self, symbol: str, record: DatasetRecord) -> Market:
        frame = await self._bars(record, None)
        if frame.empty:
            raise InputError("symbol", f"no stored {self.timeframe} candles for {symbol}",
                             "a symbol collected with collect_data")
        close = frame["close"].to_numpy(np.float64)
        atr = atr_series(frame["high"].to_numpy(np.float64), frame["low"].to_numpy(np.float64), close)
        closed_at = frame.index[-1] + pd.Timedelta(milliseconds=timeframe_ms(self.timeframe))
        quote = Quote(symbol=symbol, price=float(close[-1]), time=closed_at.isoformat(),
                      source=f"{record.source} {self.timeframe} close ({record.id})")
        return Market(quote, None if np.isnan(atr[-1]) else float(atr[-1]), record.id, record.synthetic)

    async def bars_after(self, symbol: str, after: str) -> pd.DataFrame:
        """Bars that opened at or after `after` (ISO time): what a resting order could have met since then."""
        record = await self._dataset(symbol)
        return await asyncio.to_thread(self.candles.read, Path(record.path), pd.Timestamp(after), None)

    async def _bars(self, record: DatasetRecord, start: pd.Timestamp | None) -> pd.DataFrame:
        if start is None and record.last_time:
            window = pd.Timedelta(milliseconds=ATR_BARS * timeframe_ms(self.timeframe))
            start = pd.Timestamp(record.last_time) - window
        return await asyncio.to_thread(self.candles.read, Path(record.path), start, None)

    async def _dataset(self, symbol: str) -> DatasetRecord:
        base = symbol.split("/")[0]
        stored = [d for d in await self.catalog.datasets()
                  if d.symbol.split("/")[0] == base and d.timeframe == self.timeframe and d.rows > 0]
        if not stored:
            raise InputError("symbol", f"no stored {self.timeframe} candles for {base}: paper prices come from the "
                                       "candle store", f"a symbol collected first with collect_data (e.g. {base}/USDT)")
        # real data before synthetic, then the freshest
        return max(stored, key=lambda d: (not d.synthetic, d.last_time or "", d.market == "perp"))
