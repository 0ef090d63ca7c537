"""Retrying transient failures with exponential backoff (and a server's Retry-After)."""

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

T = TypeVar("T")
MAX_DELAY_S = 30.0


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    backoff_s: float,
    transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] = lambda _: None,
) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception as error:
            if attempt == attempts or not transient(error):
                raise
            await asyncio.sleep(backoff_delay(attempt, backoff_s, retry_after(error)))
    raise AssertionError("unreachable")


def backoff_delay(attempt: int, backoff_s: float, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (from 1): doubling, with jitter, at least Retry-After."""
    delay = backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
    return min(MAX_DELAY_S, max(delay, retry_after or 0.0))


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """A response's Retry-After header in seconds (None when absent or not a number)."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
