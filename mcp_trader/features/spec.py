"""What a feature set is computed with: the timeframe and its windows, expressed in bars."""

import re

from pydantic import BaseModel, computed_field

from mcp_trader.data.timeframes import SUPPORTED, timeframe_ms
from mcp_trader.errors import InputError

DEFAULT_WINDOWS = {"1h": ("24h", "7d", "30d"), "4h": ("24h", "7d", "30d"), "1d": ("7d", "30d", "90d")}
UNIT_MS = {"h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
MIN_WINDOW_BARS = 3  # a correlation or a deviation over fewer bars says nothing
MAX_WINDOW_MS = 365 * 86_400_000
WINDOW_PATTERN = re.compile(r"^(\d+)([hdw])$")
ACCEPTED = "one to four windows such as '24h', '7d', '30d' (h, d or w), each a whole number of bars of at least 3"


class FeatureSpec(BaseModel, frozen=True):
    timeframe: str
    windows: tuple[str, ...]

    @computed_field  # type: ignore[prop-decorator]  # pydantic documents this: mypy rejects any decorator over @property
    @property
    def bars(self) -> dict[str, int]:
        step = timeframe_ms(self.timeframe)
        return {w: window_ms(w) // step for w in self.windows}

    @property
    def shortest(self) -> str:
        return self.windows[0]

    @property
    def longest(self) -> str:
        return self.windows[-1]


def window_ms(window: str) -> int:
    match = WINDOW_PATTERN.match(window)
    if match is None:
        raise InputError("windows", f"cannot read window {window!r}", ACCEPTED)
    return int(match[1]) * UNIT_MS[match[2]]


def make_spec(timeframe: str, windows: list[str] | tuple[str, ...] | None = None) -> FeatureSpec:
    """Check a timeframe and windows; windows come back sorted from shortest to longest."""
    if timeframe not in SUPPORTED:
        raise InputError("timeframe", f"unknown timeframe {timeframe!r}", ", ".join(SUPPORTED))
    chosen = list(DEFAULT_WINDOWS[timeframe] if windows is None else windows)
    if not 1 <= len(chosen) <= 4:
        raise InputError("windows", f"{len(chosen)} windows given", ACCEPTED)
    step = timeframe_ms(timeframe)
    for window in chosen:
        ms = window_ms(window)
        if ms % step or ms // step < MIN_WINDOW_BARS:
            raise InputError(
                "windows", f"{window} is {ms / step:g} bars of {timeframe}", f"{ACCEPTED}; for {timeframe} at least "
                f"{MIN_WINDOW_BARS * step // 3_600_000}h",
            )
        if ms > MAX_WINDOW_MS:
            raise InputError("windows", f"{window} is longer than a year", ACCEPTED)
    by_length = sorted(dict.fromkeys(chosen), key=window_ms)
    if len(by_length) != len(chosen) or len({window_ms(w) for w in by_length}) != len(by_length):
        raise InputError("windows", f"windows {chosen} repeat a length", ACCEPTED)
    return FeatureSpec(timeframe=timeframe, windows=tuple(by_length))
