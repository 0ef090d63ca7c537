"""Perpetual funding on the backtest's grid, from the bundled Binance USDⓈ-M funding history and, past its end
(or for an asset it lacks), the settlements collect_data fetched from the venues (mcp_trader.data.funding).

Each settlement (every 8 h) is added to the bar that contains it, and the engine charges it on the
notional held at that bar's open; on 1h and 4h bars settlements fall on bar opens, so this is exact.
Where no history is known (spot, an asset without a file, before its file starts) nothing is
charged, and the coverage says so.
"""

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
from pydantic import BaseModel

from mcp_trader.data.symbols import parse_symbol
from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.timefmt import ms_to_iso

SOURCE = "Binance USDⓈ-M funding history (bundled)"
SPOT = "spot: no funding"


class FundingCoverage(BaseModel):
    symbol: str
    source: str | None = None  # where the settlements came from: bundled, a venue, or both
    applied: bool
    settlements: int
    first: str | None
    last: str | None
    note: str | None = None


@cache
def history(base: str) -> pd.Series | None:
    """Funding rate per settlement time (UTC, ms), or None where no file is bundled."""
    path = resources.files("mcp_trader.data") / "sample" / "funding" / f"{base}_USDT-funding.csv.gz"
    if not path.is_file():
        return None
    with resources.as_file(path) as file:
        frame = pacsv.read_csv(file).to_pandas()
    return pd.Series(frame["funding_rate"].to_numpy(np.float64), index=frame["timestamp"].to_numpy(np.int64))


def funding_grid(
    symbols: list[str], index: pd.DatetimeIndex, timeframe: str,
    fetched: dict[str, tuple[pd.Series, str | None]] | None = None,
) -> tuple[np.ndarray, list[FundingCoverage]]:
    """Rates of shape (bars, assets) summed per bar, and what was known per symbol. `fetched`: per unified symbol,
    the settlements stored from a venue and its name."""
    step = timeframe_ms(timeframe)
    start = int(index[0].value // 1_000_000) if len(index) else 0
    end = start + len(index) * step
    rates = np.zeros((len(index), len(symbols)))
    coverage = []
    for k, text in enumerate(symbols):
        symbol = parse_symbol(text, "spot")  # unified symbols: a perpetual carries its ":USDT" suffix
        rates_k, cover = _one(symbol, start, end, step, len(index), (fetched or {}).get(text))
        rates[:, k] = rates_k
        coverage.append(cover.model_copy(update={"symbol": text}))
    return rates, coverage


def _one(symbol, start: int, end: int, step: int, bars: int,
         fetched: tuple[pd.Series, str | None] | None) -> tuple[np.ndarray, FundingCoverage]:
    out = np.zeros(bars)
    if symbol.market != "perp":
        return out, FundingCoverage(symbol="", applied=False, settlements=0, first=None, last=None,
                                    note=SPOT)
    series, source = _merged(history(symbol.base) if symbol.quote == "USDT" else None, fetched)
    if series is None:
        return out, FundingCoverage(symbol="", applied=False, settlements=0, first=None, last=None,
                                    note="no funding history known for this asset: not applied")
    inside = series[(series.index >= start) & (series.index < end)]
    np.add.at(out, (inside.index.to_numpy() - start) // step, inside.to_numpy())
    note = None
    if len(inside) == 0:
        note = "funding history does not cover this span: not applied"
    elif inside.index[0] - start >= 8 * 3_600_000:
        note = f"funding history starts {ms_to_iso(inside.index[0])}: not applied before"
    return out, FundingCoverage(
        symbol="", source=source, applied=len(inside) > 0, settlements=len(inside),
        first=ms_to_iso(inside.index[0]) if len(inside) else None,
        last=ms_to_iso(inside.index[-1]) if len(inside) else None,
        note=note,
    )


def known_rates(symbol: str, funding_dir: Path) -> pd.Series | None:
    """A perpetual's settlements as far as known: the bundled history, then what collect_data stored from a venue."""
    from mcp_trader.data.funding import FundingStore

    parsed = parse_symbol(symbol, "perp")
    bundled = history(parsed.base) if parsed.quote == "USDT" else None
    return _merged(bundled, FundingStore(funding_dir).stored(parsed))[0]


def stored_funding(funding_dir: Path, symbols: list[str]) -> dict[str, tuple[pd.Series, str | None]]:
    """The venues' settlements collect_data stored, per perpetual symbol: `funding_grid`'s `fetched`."""
    from mcp_trader.data.funding import FundingStore

    store = FundingStore(funding_dir)
    return {s: store.stored(parse_symbol(s, "spot")) for s in symbols if ":" in s}


def _merged(bundled: pd.Series | None,
            fetched: tuple[pd.Series, str | None] | None) -> tuple[pd.Series | None, str | None]:
    """The bundled history, continued after its last settlement by the venue's."""
    venue_rates, venue = fetched if fetched is not None and len(fetched[0]) else (None, None)
    if venue_rates is None:
        return bundled, SOURCE if bundled is not None else None
    if bundled is None:
        return venue_rates, f"{venue} (fetchFundingRateHistory)"
    later = venue_rates[venue_rates.index > bundled.index[-1]]
    if not len(later):
        return bundled, SOURCE
    described = f"{SOURCE} to {ms_to_iso(bundled.index[-1])}, then {venue} (fetchFundingRateHistory)"
    return pd.concat([bundled, later]), described
