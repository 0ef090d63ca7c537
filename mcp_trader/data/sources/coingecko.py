"""CoinGecko's public API over httpx: hourly price snapshots turned into approximate candles.

CoinGecko has no exchange candles at hourly resolution. `market_chart/range` gives a price
snapshot about every hour (for ranges of at most 90 days) and a rolling 24 h volume, so a bar's
open is the previous snapshot, its close the last snapshot inside it, and its volume a 24th of the
rolling volume. Results from this source say so.
"""

import httpx
import numpy as np
import pandas as pd

from mcp_trader.config import Settings
from mcp_trader.data import candles
from mcp_trader.data.retry import retry_after_s, with_retries
from mcp_trader.data.sources.base import (
    Fetched,
    PageProgress,
    Source,
    SourceLacksData,
    SourceUnavailable,
    Window,
)
from mcp_trader.data.symbols import Symbol

COIN_IDS = {
    "BTC": "bitcoin", "ETH": "ethereum", "BNB": "binancecoin", "SOL": "solana", "XRP": "ripple",
    "DOGE": "dogecoin", "ADA": "cardano", "AVAX": "avalanche-2", "LINK": "chainlink", "LTC": "litecoin",
    "DOT": "polkadot", "NEAR": "near", "BCH": "bitcoin-cash", "XTZ": "tezos", "TRX": "tron",
    "ATOM": "cosmos", "UNI": "uniswap", "ARB": "arbitrum", "OP": "optimism", "SUI": "sui",
    "APT": "aptos", "ASTER": "aster-2", "PEPE": "pepe", "TON": "the-open-network",
}
CHUNK_MS = 90 * 86_400_000  # longer ranges come back daily instead of hourly
HOUR_MS = 3_600_000


class CoinGeckoSource(Source):
    name = "coingecko"
    network = True
    native_timeframes = ("1h",)

    def __init__(self, settings: Settings):
        self.settings = settings
        headers = {"x-cg-demo-api-key": settings.coingecko_api_key} if settings.coingecko_api_key else {}
        self.client = httpx.AsyncClient(
            base_url=settings.coingecko_url.rstrip("/"), timeout=settings.request_timeout_s, headers=headers
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def lists(self, symbol: Symbol) -> bool:
        return symbol.base in COIN_IDS and symbol.quote in ("USDT", "USDC", "USD")

    async def fetch(
        self, symbol: Symbol, timeframe: str, window: Window, progress: PageProgress | None = None
    ) -> Fetched:
        prices: list[list[float]] = []
        volumes: list[list[float]] = []
        # One snapshot before the window gives the first bar its open.
        for start in range(window.start_ms - HOUR_MS, window.end_ms, CHUNK_MS):
            body = await self._get(
                f"/coins/{COIN_IDS[symbol.base]}/market_chart/range",
                {"vs_currency": "usd", "from": start // 1000, "to": min(start + CHUNK_MS, window.end_ms) // 1000},
            )
            prices += body["prices"]
            volumes += body["total_volumes"]
            if progress:
                await progress(len(prices))
        frame = _bars(prices, volumes, window)
        if frame.empty:
            raise SourceLacksData(f"coingecko returned no prices for {symbol} in the window")
        note = "coingecko: approximate candles from hourly price snapshots (USD); volume from 24 h rolling volume"
        return Fetched(frame, window, note)

    async def _get(self, path: str, params: dict[str, str | int]) -> dict:
        async def call() -> dict:
            response = await self.client.get(path, params=params)
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
                raise ValueError("response has no 'prices' list")
            return body

        try:
            return await with_retries(
                call,
                attempts=self.settings.retries,
                backoff_s=self.settings.backoff_s,
                transient=_transient,
                retry_after=_retry_after,
            )
        except (httpx.HTTPError, ValueError) as error:
            raise SourceUnavailable(_describe(error)) from error


def _bars(prices: list[list[float]], volumes: list[list[float]], window: Window) -> pd.DataFrame:
    if not prices:
        return candles.empty()
    snap = pd.DataFrame(prices, columns=["ms", "price"]).drop_duplicates("ms").sort_values("ms")
    vol = pd.DataFrame(volumes, columns=["ms", "volume"]).drop_duplicates("ms")
    snap = snap.merge(vol, on="ms", how="left")
    snap["bar"] = snap["ms"] // HOUR_MS * HOUR_MS
    bars = snap.groupby("bar").agg(
        close=("price", "last"), high=("price", "max"), low=("price", "min"), volume=("volume", "last")
    )
    bars["open"] = bars["close"].shift(1)
    bars = bars.dropna(subset=["open"])
    bars["high"] = np.maximum(bars["high"], bars["open"])
    bars["low"] = np.minimum(bars["low"], bars["open"])
    bars["volume"] = bars["volume"].fillna(0.0) / 24 / bars["close"]
    rows = np.column_stack([bars.index.to_numpy(), bars[list(candles.COLUMNS)].to_numpy()])
    return candles.between(candles.from_rows(rows), window.start_ms, window.end_ms)


def _transient(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code == 429 or error.response.status_code >= 500
    return isinstance(error, httpx.TransportError | ValueError)


def _retry_after(error: BaseException) -> float | None:
    return retry_after_s(error.response.headers) if isinstance(error, httpx.HTTPStatusError) else None


def _describe(error: BaseException) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code} from coingecko"
    return f"{type(error).__name__}: {str(error)[:200]}"
