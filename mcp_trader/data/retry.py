"""Retrying transient failures with exponential backoff (and a server's Retry-After)."""

import asyncio
import random
from collections.abc import Awaitable, Callable
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
            delay = backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
            await asyncio.sleep(min(MAX_DELAY_S, max(delay, retry_after(error) or 0.0)))
    raise AssertionError("unreachable")
