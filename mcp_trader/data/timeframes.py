"""Timeframes in ccxt's notation and the arithmetic on them."""

from mcp_trader.errors import InputError

TIMEFRAME_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
SUPPORTED = ("1h", "4h", "1d")


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise InputError("timeframe", f"unknown timeframe {timeframe!r}", ", ".join(TIMEFRAME_MS)) from None


def pandas_freq(timeframe: str) -> str:
    return f"{timeframe_ms(timeframe) // 60_000}min"


def finer_timeframe(timeframe: str, native: tuple[str, ...]) -> str | None:
    """The coarsest native timeframe that divides `timeframe` evenly, or None."""
    target = timeframe_ms(timeframe)
    divisors = [tf for tf in native if target % TIMEFRAME_MS[tf] == 0 and TIMEFRAME_MS[tf] < target]
    return max(divisors, key=TIMEFRAME_MS.__getitem__, default=None)


def floor_ms(ms: int, timeframe: str) -> int:
    step = timeframe_ms(timeframe)
    return ms - ms % step
