"""Time formats: UTC datetimes, ISO 8601 strings and epoch milliseconds (pandas is imported only when used)."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_iso(timespec: str = "seconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec)


def iso_z(t: datetime) -> str:
    """`t` (UTC) as 2024-01-31T12:00:00Z, in whole seconds."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_ms(index: "pd.DatetimeIndex") -> "np.ndarray":
    return index.as_unit("ms").asi8


def ms_to_time(ms: int) -> "pd.Timestamp":
    import pandas as pd

    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def ms_to_iso(ms: int) -> str:
    return ms_to_time(ms).isoformat()
