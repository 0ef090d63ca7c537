"""What every source offers, and the ways a source can decline."""

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pandas as pd

from mcp_trader.data.symbols import Symbol

PageProgress = Callable[[int], Awaitable[None]]  # called with the rows fetched so far


class SourceUnavailable(Exception):
    """The source could not answer (network, rate limit, server error, bad response)."""


class SourceLacksData(Exception):
    """The source answered, but has nothing for this symbol, timeframe or window."""


@dataclass(frozen=True)
class Window:
    """Bars whose open time lies in [start_ms, end_ms); `recent` when asked as "the last N days"."""

    start_ms: int
    end_ms: int
    recent: bool


@dataclass
class Fetched:
    frame: pd.DataFrame
    window: Window  # the window actually served, which a local source may have had to move
    note: str | None = None


class Source(ABC):
    name: str
    network: bool = False
    synthetic: bool = False
    native_timeframes: tuple[str, ...] = ("1h", "4h", "1d")

    async def __aenter__(self) -> "Source":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:  # noqa: B027 - most sources hold nothing
        pass

    @abstractmethod
    async def lists(self, symbol: Symbol) -> bool:
        """Whether the source has this market at all; raises SourceUnavailable if it cannot tell."""

    @abstractmethod
    async def fetch(
        self, symbol: Symbol, timeframe: str, window: Window, progress: PageProgress | None = None
    ) -> Fetched:
        """Candles of a native timeframe for the window; raises SourceUnavailable or SourceLacksData."""

    def adjust_window(self, symbol: Symbol, timeframe: str, window: Window) -> tuple[Window, str | None]:
        """The window this source will serve for a request (local data may end before today)."""
        return window, None
