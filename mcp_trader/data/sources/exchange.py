"""Exchanges through ccxt: Aster DEX (perpetuals) and Binance (spot and USDⓈ-M perpetuals)."""

from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt

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
from mcp_trader.data.timeframes import timeframe_ms

if TYPE_CHECKING:
    import pandas as pd

# Errors worth another try: the network, rate limits, overloaded or confused servers.
TRANSIENT = (ccxt.NetworkError, ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable, ccxt.BadResponse)


class ExchangeSource(Source):
    network = True
    page_limit = 1000

    def __init__(self, settings: Settings):
        self.settings = settings
        self._exchanges: dict[str, ccxt.Exchange] = {}

    def _create(self, market: str) -> ccxt.Exchange:
        raise NotImplementedError

    def _exchange(self, market: str) -> ccxt.Exchange:
        if market not in self._exchanges:
            exchange = self._create(market)
            _reject_non_json(exchange)
            self._exchanges[market] = exchange
        return self._exchanges[market]

    async def close(self) -> None:
        for exchange in self._exchanges.values():
            await exchange.close()
        self._exchanges.clear()

    async def _call(self, exchange: ccxt.Exchange, method: str, *args: Any, **kwargs: Any) -> Any:
        async def call() -> Any:
            return await getattr(exchange, method)(*args, **kwargs)

        try:
            return await with_retries(
                call,
                attempts=self.settings.retries,
                backoff_s=self.settings.backoff_s,
                transient=lambda e: isinstance(e, TRANSIENT),
                retry_after=lambda _: retry_after_s(exchange.last_response_headers),
            )
        except ccxt.BaseError as error:
            raise SourceUnavailable(_describe(error)) from error

    async def lists(self, symbol: Symbol) -> bool:
        exchange = self._exchange(symbol.market)
        markets = await self._call(exchange, "load_markets")
        return symbol.unified in markets

    async def fetch(
        self, symbol: Symbol, timeframe: str, window: Window, progress: PageProgress | None = None
    ) -> Fetched:
        exchange = self._exchange(symbol.market)
        step = timeframe_ms(timeframe)
        now = exchange.milliseconds()
        rows: list[list[float]] = []
        since = window.start_ms
        while since < window.end_ms:
            page = await self._call(
                exchange, "fetch_ohlcv", symbol.unified, timeframe,
                since=since, limit=self.page_limit, params={"until": window.end_ms - 1},
            )
            page = [row for row in page if since <= row[0] < window.end_ms and row[0] + step <= now]
            if not page:
                break
            rows.extend(page)
            since = int(page[-1][0]) + step
            if progress:
                await progress(len(rows))
        if not rows:
            raise SourceLacksData(f"{self.name} returned no {timeframe} candles for {symbol} in the window")
        return Fetched(candles.from_rows(rows), window)


    async def fetch_funding(self, symbol: Symbol, start_ms: int, end_ms: int) -> "pd.Series":
        """Funding settlements of a perpetual in [start_ms, end_ms), page by page (fetchFundingRateHistory)."""
        import pandas as pd

        exchange = self._exchange("perp")
        found: dict[int, float] = {}
        since = start_ms
        while since < end_ms:
            page = await self._call(exchange, "fetch_funding_rate_history", symbol.unified, since=since,
                                    limit=1000, params={"until": end_ms - 1})
            page = [row for row in page if since <= row["timestamp"] < end_ms]
            if not page:
                break
            found.update({int(row["timestamp"]): float(row["fundingRate"]) for row in page})
            since = int(page[-1]["timestamp"]) + 1
        return pd.Series(found, dtype="float64").sort_index()


class AsterSource(ExchangeSource):
    name = "aster"
    page_limit = 1500

    def _create(self, market: str) -> ccxt.Exchange:
        exchange = ccxt.aster(_options(self.settings, {"defaultType": "swap" if market == "perp" else "spot"}))
        # builderFee off: otherwise ccxt adds a 0.1 % builder fee to every order (as in trading/aster.py).
        exchange.options["builderFee"] = False
        _rehost(exchange, {"https://fapi.asterdex.com": self.settings.aster_url,
                           "https://sapi.asterdex.com": self.settings.aster_spot_url})
        return exchange


class BinanceSource(ExchangeSource):
    name = "binance"
    page_limit = 1000

    def _create(self, market: str) -> ccxt.Exchange:
        types = ["linear"] if market == "perp" else ["spot"]
        exchange = ccxt.binance(_options(self.settings, {"fetchMarkets": {"types": types}}))
        _rehost(exchange, {"https://api.binance.com": self.settings.binance_url,
                           "https://fapi.binance.com": self.settings.binance_futures_url})
        return exchange


def _options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    return {"enableRateLimit": True, "timeout": int(settings.request_timeout_s * 1000), "options": options}


def _rehost(exchange: ccxt.Exchange, hosts: dict[str, str]) -> None:
    """Point the exchange's REST endpoints at configured hosts (a proxy, a mirror, a test server)."""
    for key, url in exchange.urls["api"].items():
        for default, configured in hosts.items():
            if isinstance(url, str) and url.startswith(default):
                exchange.urls["api"][key] = configured.rstrip("/") + url[len(default):]


def _reject_non_json(exchange: ccxt.Exchange) -> None:
    """Make a successful answer whose body is not JSON (truncated, an HTML page) a BadResponse.

    ccxt hands such a body back as text, which then parses as no candles or no markets: the source
    would look empty instead of broken, and the answer would not be retried.
    """
    handle_errors = exchange.handle_errors

    def strict(code: int, reason: str, url: str, method: str, headers: dict, body: str, response: Any,
               *rest: Any) -> Any:
        result = handle_errors(code, reason, url, method, headers, body, response, *rest)
        if response is None and code is not None and 200 <= code < 300:
            raise ccxt.BadResponse(f"{exchange.id} {method} {url.split('?')[0]} answered {code} with a body "
                                   f"that is not JSON: {str(body)[:60]!r}")
        return result

    exchange.handle_errors = strict


def _describe(error: ccxt.BaseError) -> str:
    kind = type(error).__name__
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{kind}: {text[:200]}" if text else kind
