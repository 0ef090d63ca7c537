"""A fake Aster / Binance / CoinGecko HTTP server on 127.0.0.1 that speaks their real REST protocols.

One real HTTP server (``ThreadingHTTPServer`` in a background thread, ephemeral port) serves every
venue under its own path prefix, so our Settings can point ccxt and httpx at it:

    aster_url           = {base}/aster          -> /fapi/v3/{exchangeInfo,klines,time,ping}
    aster_spot_url      = {base}/aster-spot     -> /api/v3/{exchangeInfo,time,ping} (no spot symbols)
    binance_url         = {base}/binance        -> /api/v3/{exchangeInfo,klines,time,ping}
    binance_futures_url = {base}/binance-fapi   -> /fapi/v1/{exchangeInfo,klines,time,ping}
    coingecko_url       = {base}/coingecko/api/v3 -> /coins/{id}/market_chart/range, /ping

Candles come from a deterministic hourly random walk per base asset (seeded, starting
2024-01-01 and running a few hours past now), so explicit windows are reproducible and windows
given as "the last N days" are covered too.

Faults are queued per source ("aster" covers both Aster hosts, "binance" both Binance hosts) and
consumed by the next matching requests: ``timeout``, ``429`` (with Retry-After), ``503``/``502``,
``malformed`` (a truncated JSON body with status 200) and ``refuse`` (the connection is closed
without an answer). ``gap`` removes a range of candles from a source's history. Every request is
recorded (source, venue, path, query, status) so tests can check pagination and incrementality.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from fakes.local_http import LocalServer

HOUR_MS = 3_600_000
TABLE_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
KLINE_LIMITS = {"aster": 1500, "binance": 1000, "binance-fapi": 1500}
INTERVALS = {"1h": HOUR_MS, "4h": 4 * HOUR_MS, "1d": 24 * HOUR_MS}
START_PRICES = {"BTC": 42_000.0, "ETH": 2_300.0}
COIN_IDS = {"bitcoin": "BTC", "ethereum": "ETH"}
# Venue path prefix -> the source name that faults and gaps are keyed by.
VENUES = {
    "aster": "aster", "aster-spot": "aster", "binance": "binance", "binance-fapi": "binance",
    "coingecko": "coingecko",
}
API_VERSIONS = {"aster": "/fapi/v3", "aster-spot": "/api/v3", "binance": "/api/v3", "binance-fapi": "/fapi/v1"}
FAULT_KINDS = ("timeout", "429", "502", "503", "malformed", "refuse")


@cache
def _walk(base: str, hours: int) -> np.ndarray:
    """Rows [open_ms, open, high, low, close, volume] of an hourly random walk, prices to cents.

    Each series draws from its own generator, so a bar's values do not depend on how many hours
    the table holds: the same timestamp has the same candle whenever the table is built.
    """
    seed = sum(base.encode())
    returns = np.random.default_rng([seed, 0]).normal(0.0, 0.004, hours)
    wick = np.abs(np.random.default_rng([seed, 1]).normal(0.0, 0.0015, (hours, 2)))
    volume = np.random.default_rng([seed, 2]).uniform(50.0, 500.0, hours)
    start = START_PRICES.get(base, 10.0)
    close = start * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * (1 + wick[:, 0])
    low = np.minimum(open_, close) * (1 - wick[:, 1])
    ms = TABLE_START_MS + np.arange(hours, dtype=np.int64) * HOUR_MS
    return np.column_stack([ms, *(np.round(a, 2) for a in (open_, high, low, close)), np.round(volume, 3)])


def funding_rate(source: str, symbol: str, time_ms: int) -> float:
    """The fake venues' funding rate at a settlement: 0.01 % plus a slow wave, different per venue and asset."""
    phase = sum(symbol.encode()) + (7 if source == "aster" else 0)
    return 0.0001 + 0.00005 * np.sin(time_ms / (5 * 24 * HOUR_MS) + phase)


def candle_table(base: str, until_ms: int | None = None) -> np.ndarray:
    """The fake market's hourly candles of `base` from 2024-01-01 to a few hours past `until_ms` (now)."""
    until_ms = int(time.time() * 1000) if until_ms is None else until_ms
    hours = (until_ms - TABLE_START_MS) // HOUR_MS + 4
    return _walk(base, int(hours))


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: every matching request, until cleared
    path: str | None = None  # only requests whose path contains this
    retry_after: float = 0.0
    delay_s: float = 5.0


@dataclass
class Request:
    source: str
    venue: str
    path: str
    query: dict[str, str]
    status: int | None = None
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _State:
    symbols: dict[str, list[str]] = field(default_factory=lambda: {"aster": ["BTC", "ETH"], "binance": ["BTC", "ETH"]})
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    planted: dict[str, np.ndarray] = field(default_factory=dict)  # base -> its candle table, instead of the walk
    requests: list[Request] = field(default_factory=list)


class FakeMarkets(LocalServer):
    """The server's state and controls; the HTTP handler reads it under a lock."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.state = _State()

    # --- lifecycle ---------------------------------------------------------------------------
    def handler(self) -> type[BaseHTTPRequestHandler]:
        markets = self

        class Handler(_Handler):
            fake = markets

        return Handler

    def urls(self) -> dict[str, str]:
        """Settings fields that point every network source at this server."""
        return {
            "aster_url": f"{self.base_url}/aster",
            "aster_spot_url": f"{self.base_url}/aster-spot",
            "binance_url": f"{self.base_url}/binance",
            "binance_futures_url": f"{self.base_url}/binance-fapi",
            "coingecko_url": f"{self.base_url}/coingecko/api/v3",
        }

    # --- controls ----------------------------------------------------------------------------
    def fail(
        self, source: str, kind: str, times: int | None = 1, *, path: str | None = None,
        retry_after: float = 0.0, delay_s: float = 5.0,
    ) -> None:
        """Answer the next `times` requests to `source` (all of them if None) with a fault."""
        assert source in set(VENUES.values()), source
        assert kind in FAULT_KINDS, kind
        with self.lock:
            self.state.faults.setdefault(source, []).append(
                Fault(kind, times, path, retry_after=retry_after, delay_s=delay_s)
            )

    def clear_faults(self) -> None:
        with self.lock:
            self.state.faults.clear()

    def gap(self, source: str, start_ms: int, end_ms: int) -> None:
        """Drop the candles with open time in [start_ms, end_ms) from `source`'s history."""
        with self.lock:
            self.state.gaps.setdefault(source, []).append((start_ms, end_ms))

    def plant(self, base: str, table: np.ndarray) -> None:
        """Serve `table` (rows [open_ms, open, high, low, close, volume], hourly from TABLE_START_MS) for `base`."""
        with self.lock:
            self.state.planted[base] = table

    def list_symbols(self, source: str, bases: list[str]) -> None:
        with self.lock:
            self.state.symbols[source] = list(bases)

    @property
    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.state.requests)

    def kline_requests(self, source: str | None = None) -> list[Request]:
        return [
            r for r in self.requests
            if (source is None or r.source == source) and ("klines" in r.path or "market_chart" in r.path)
        ]

    def reset_requests(self) -> None:
        with self.lock:
            self.state.requests.clear()

    # --- used by the handler -----------------------------------------------------------------
    def _take_fault(self, source: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.state.faults.get(source, []):
                if fault.path is not None and fault.path not in path:
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                return fault
        return None

    def _candles(self, source: str, base: str) -> np.ndarray:
        with self.lock:
            gaps = list(self.state.gaps.get(source, []))
            planted = self.state.planted.get(base)
        table = candle_table(base) if planted is None else planted
        for start_ms, end_ms in gaps:
            table = table[(table[:, 0] < start_ms) | (table[:, 0] >= end_ms)]
        return table

    def _record(self, request: Request) -> None:
        with self.lock:
            self.state.requests.append(request)


def _decimal(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".")


def _resample(table: np.ndarray, step: int) -> np.ndarray:
    if step == HOUR_MS or not len(table):
        return table
    keys = table[:, 0] // step * step
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(table)]
    return np.array([
        [keys[s], table[s, 1], table[s:e, 2].max(), table[s:e, 3].min(), table[e - 1, 4], table[s:e, 5].sum()]
        for s, e in zip(starts, ends, strict=True)
    ])


class _Handler(BaseHTTPRequestHandler):
    fake: FakeMarkets
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        parts = split.path.lstrip("/").split("/", 1)
        venue, path = parts[0], "/" + (parts[1] if len(parts) > 1 else "")
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        source = VENUES.get(venue)
        record = Request(source or "?", venue, path, query)
        self.fake._record(record)
        if source is None:
            return self._send(record, 404, {"error": f"no venue {venue!r}"})
        fault = self.fake._take_fault(source, path)
        if fault is not None and self._inject(record, fault):
            return
        try:
            status, body = self._route(source, venue, path, query)
        except _ApiError as error:
            status, body = error.status, error.body
        self._send(record, status, body)

    # --- faults ------------------------------------------------------------------------------
    def _inject(self, record: Request, fault: Fault) -> bool:
        """Apply a fault; True when the request has been answered (or dropped) by it."""
        record.fault = fault.kind
        if fault.kind == "timeout":
            self.fake.stopping.wait(fault.delay_s)  # longer than the client's timeout; cut short at stop
            self.close_connection = True
            return True  # the client gave up long ago: answer nothing
        if fault.kind == "refuse":
            self.close_connection = True
            return True
        if fault.kind == "429":
            body = {"code": -1003, "msg": "Too many requests; please use the websocket for live updates."}
            if record.source == "coingecko":
                body = {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}
            self._send(record, 429, body, {"Retry-After": _decimal(fault.retry_after) or "0"})
            return True
        if fault.kind in ("502", "503"):
            text = b"<html><body><h1>" + fault.kind.encode() + b" Service Unavailable</h1></body></html>"
            self._send_raw(record, int(fault.kind), text, "text/html")
            return True
        if fault.kind == "malformed":
            self._send_raw(record, 200, b'{"symbols": [{"symbol": "BTCU', "application/json")
            return True
        raise AssertionError(fault.kind)

    # --- routes ------------------------------------------------------------------------------
    def _route(self, source: str, venue: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        now = int(time.time() * 1000)
        if venue == "coingecko":
            return self._coingecko(path, query)
        version = API_VERSIONS[venue]
        if not path.startswith(version + "/"):
            raise _ApiError(404, {"code": -1000, "msg": f"no such endpoint {path}"})
        endpoint = path[len(version) + 1:]
        if endpoint == "ping":
            return 200, {}
        if endpoint == "time":
            return 200, {"serverTime": now}
        if endpoint == "exchangeInfo":
            return 200, self._exchange_info(source, venue, now)
        if endpoint == "klines" and venue != "aster-spot":
            return 200, self._klines(source, venue, query)
        if endpoint == "fundingRate" and venue in ("aster", "binance-fapi"):
            return 200, self._funding(source, query, now)
        raise _ApiError(404, {"code": -1000, "msg": f"no such endpoint {path}"})

    def _exchange_info(self, source: str, venue: str, now: int) -> dict[str, Any]:
        with self.fake.lock:
            bases = list(self.fake.state.symbols.get(source, []))
        if venue == "aster-spot":
            bases = []  # Aster spot lists nothing here: only the perpetuals are served
        perp = venue in ("aster", "binance-fapi")
        return {
            "timezone": "UTC", "serverTime": now, "exchangeFilters": [],
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": 0}] if perp else [],
            "symbols": [_perp_symbol(b) if perp else _spot_symbol(b) for b in bases],
        }

    def _funding(self, source: str, query: dict[str, str], now: int) -> list[dict[str, Any]]:
        """Settlements every 8 h from 2024-01-01 to now: a rate that depends on the asset, the venue and the time."""
        with self.fake.lock:
            listed = [f"{b}USDT" for b in self.fake.state.symbols.get(source, [])]
        symbol = query.get("symbol", "")
        if symbol not in listed:
            raise _ApiError(400, {"code": -1121, "msg": "Invalid symbol."})
        limit = int(query.get("limit", 100))
        if not 1 <= limit <= 1000:
            raise _ApiError(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
        times = np.arange(TABLE_START_MS, now, 8 * HOUR_MS, dtype=np.int64)
        picked = times[_window(times, query, limit)]
        return [{"symbol": symbol, "fundingTime": int(t), "fundingRate": f"{funding_rate(source, symbol, int(t)):.8f}",
                 "markPrice": "0"} for t in picked]

    def _klines(self, source: str, venue: str, query: dict[str, str]) -> list[list[Any]]:
        with self.fake.lock:
            listed = [f"{b}USDT" for b in self.fake.state.symbols.get(source, [])]
        symbol = query.get("symbol", "")
        if symbol not in listed:
            raise _ApiError(400, {"code": -1121, "msg": "Invalid symbol."})
        step = INTERVALS.get(query.get("interval", ""))
        if step is None:
            raise _ApiError(400, {"code": -1120, "msg": "Invalid interval."})
        limit = int(query.get("limit", 500))
        if not 1 <= limit <= KLINE_LIMITS[venue]:
            raise _ApiError(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
        table = _resample(self.fake._candles(source, symbol.removesuffix("USDT")), step)
        rows = table[_window(table[:, 0], query, limit)]
        return [
            [int(r[0]), _decimal(r[1]), _decimal(r[2]), _decimal(r[3]), _decimal(r[4]), _decimal(r[5]),
             int(r[0]) + step - 1, _decimal(r[5] * r[4]), 1000, _decimal(r[5] / 2), _decimal(r[5] * r[4] / 2), "0"]
            for r in rows
        ]

    def _coingecko(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/ping":
            return 200, {"gecko_says": "(V3) To the Moon!"}
        parts = path.split("/")
        # /api/v3/coins/{id}/market_chart/range
        if len(parts) != 7 or parts[1:4] != ["api", "v3", "coins"] or parts[5:] != ["market_chart", "range"]:
            raise _ApiError(404, {"error": "Not found"})
        base = COIN_IDS.get(parts[4])
        if base is None:
            raise _ApiError(404, {"error": "coin not found"})
        if query.get("vs_currency") != "usd" or "from" not in query or "to" not in query:
            raise _ApiError(400, {"error": "missing vs_currency, from or to"})
        start, end = int(float(query["from"])) * 1000, int(float(query["to"])) * 1000
        table = self.fake._candles("coingecko", base)
        # One snapshot a few minutes into every hour, at that hour's close; volume a rolling 24 h sum in USD.
        stamps = table[:, 0].astype(np.int64) + 180_000
        usd_volume = np.convolve(table[:, 5] * table[:, 4], np.ones(24), mode="full")[: len(table)]
        keep = (stamps >= start) & (stamps <= end)
        prices = [[int(t), float(p)] for t, p in zip(stamps[keep], table[keep, 4], strict=True)]
        caps = [[t, p * 19_700_000] for t, p in prices]
        volumes = [[int(t), float(v)] for t, v in zip(stamps[keep], usd_volume[keep], strict=True)]
        return 200, {"prices": prices, "market_caps": caps, "total_volumes": volumes}

    # --- answers -----------------------------------------------------------------------------
    def _send(self, record: Request, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(record, status, json.dumps(body).encode(), "application/json", headers)

    def _send_raw(
        self, record: Request, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        record.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _ApiError(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(body)
        self.status = status
        self.body = body


def _perp_filters() -> list[dict[str, Any]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "5"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ]


def _perp_symbol(base: str) -> dict[str, Any]:
    return {
        "symbol": f"{base}USDT", "pair": f"{base}USDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": base, "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "filters": _perp_filters(),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                       "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"], "liquidationFee": "0.012500", "marketTakeBound": "0.05",
    }


def _spot_symbol(base: str) -> dict[str, Any]:
    return {
        "symbol": f"{base}USDT", "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
            {"filterType": "NOTIONAL", "minNotional": "5", "applyMinToMarket": True, "maxNotional": "9000000",
             "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT", "MARGIN"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


@contextmanager
def running() -> Iterator[FakeMarkets]:
    """The fake server, started and stopped around a block."""
    fake = FakeMarkets().start()
    try:
        yield fake
    finally:
        fake.stop()


def _window(ms: np.ndarray, query: dict[str, str], limit: int) -> np.ndarray:
    """Indices of the rows inside [startTime, endTime]: from startTime on, or without one the latest, as the real
    APIs answer; at most `limit`."""
    keep = np.ones(len(ms), dtype=bool)
    if "startTime" in query:
        keep &= ms >= int(query["startTime"])
    if "endTime" in query:
        keep &= ms <= int(query["endTime"])
    inside = np.flatnonzero(keep)
    return inside[:limit] if "startTime" in query else inside[-limit:]
