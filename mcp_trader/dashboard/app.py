"""The dashboard: one HTML page (page.html, vanilla JS polling JSON) over GET-only endpoints on a Home.

Every endpoint answers JSON; a panel whose data is missing (no model yet, no feature set…) answers
{"error": "...", "hint": "..."} with a 4xx status, and the page shows that panel's message while the others
keep working. Nothing here places, cancels or changes orders: the app has no route for any method but GET
(and HEAD). Valuations are read with record=False, so polling writes no equity snapshots.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import TYPE_CHECKING, Any, cast

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mcp_trader.errors import InputError, NotFoundError, Refused
from mcp_trader.home import Home
from mcp_trader.trading.orders import Mode

if TYPE_CHECKING:
    from mcp_trader.trading.desk import Desk

log = logging.getLogger(__name__)
SIGNALS_TTL_S = 5.0  # a signal snapshot costs ~0.1 s (more on first use): shared by every poll within this time
HEATMAP_TTL_S = 30.0
MODES = ("paper", "live")


class Missing(Exception):
    """A panel with nothing to show yet: the message and what makes it appear."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class _Cache:
    """The last answer per key for a few seconds, computed once even when several polls ask at the same time."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, ttl: float, make: Callable[[], Awaitable[Any]]) -> Any:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._values.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            value = await make()
            self._values[key] = (time.monotonic(), value)
            return value

    def forget(self, which: Callable[[str], bool]) -> None:
        for key in [k for k in self._values if which(k)]:
            del self._values[key]


def dashboard_app(home: Home, own_home: bool = False, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard over `home`. own_home: close it when the app stops (the standalone command); beside the MCP
    server the home is the server's own, shared, and closed by it. allowed_hosts: the Host headers answered
    (a loopback server without a token answers only local names, so a DNS-rebinding page cannot read it)."""
    cache = _Cache()

    def endpoint(make: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                body = await make(request)
            except Missing as missing:
                return JSONResponse({"error": str(missing), "hint": missing.hint}, status_code=404)
            except NotFoundError as error:
                return JSONResponse({"error": str(error)}, status_code=404)
            except (InputError, Refused) as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            except Exception as error:  # one panel's failure must not break the page or the server
                log.exception("dashboard %s failed", request.url.path)
                return JSONResponse({"error": f"internal error: {type(error).__name__}: {error}"}, status_code=500)
            return body if isinstance(body, Response) else JSONResponse(body, headers={"cache-control": "no-store"})

        return handle

    def mode_of(request: Request) -> Mode:
        mode = request.query_params.get("mode", "paper")
        if mode not in MODES:
            raise InputError("mode", repr(mode), "paper or live")
        return cast(Mode, mode)  # one of MODES

    async def page(_: Request) -> Response:
        html = files("mcp_trader.dashboard").joinpath("page.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    async def account(request: Request) -> dict:
        valuation = await (await _desk(home)).valuation(mode_of(request), record=False)
        return valuation.model_dump(mode="json")

    async def orders(request: Request) -> dict:
        mode = mode_of(request)
        listed = await (await _desk(home)).orders(mode, limit=_limit(request, 50))
        return {"mode": mode, "orders": [o.model_dump(mode="json") for o in listed]}

    async def equity(request: Request) -> dict:
        mode = mode_of(request)
        history = await (await home.ledger()).equity_history(mode)
        return {"mode": mode, "snapshots": history[-2000:], "count": len(history)}

    async def signals(_: Request) -> dict:
        return await cache.get("signals", SIGNALS_TTL_S, lambda: _signals(home))

    async def heatmap(_: Request) -> dict:
        record = await _newest_feature_set(home)
        return {"feature_set_id": record.id, "timeframe": record.timeframe, "symbols": record.symbols,
                "end": record.end, "synthetic": record.synthetic, "png": f"api/heatmap.png?id={record.id}"}

    async def heatmap_png(request: Request) -> Response:
        wanted = request.query_params.get("id") or (await _newest_feature_set(home)).id
        png = await cache.get(f"heatmap:{wanted}", HEATMAP_TTL_S, lambda: _heatmap(home, wanted))
        cache.forget(lambda key: key.startswith("heatmap:") and key != f"heatmap:{wanted}")  # one image kept
        return Response(png, media_type="image/png", headers={"cache-control": "max-age=30"})

    async def backtest(_: Request) -> dict:
        from mcp_trader.backtest.listing import BacktestListing
        records = await (await home.backtests()).records(limit=1)
        if not records:
            raise Missing("no backtest yet", "run_backtest")
        r = records[0]
        return {**BacktestListing.of(r).model_dump(mode="json"), "metrics": r.metrics.model_dump(mode="json"),
                "trade_stats": r.trades.model_dump(mode="json")}

    async def models(_: Request) -> dict:
        from mcp_trader.models.listing import ModelListing
        records = await (await home.models()).records(limit=5)
        if not records:
            raise Missing("no model yet", "train_model")
        return {"models": [ModelListing.of(r).model_dump(mode="json") for r in records]}

    async def jobs(_: Request) -> dict:
        listed = await (await home.jobs(recover=False)).list(limit=20)  # a plain read, no write
        return {"jobs": [j.model_dump(mode="json", exclude={"params", "result"}) for j in listed]}

    @asynccontextmanager
    async def lifespan(_: Starlette):
        try:
            yield
        finally:
            if own_home:
                await home.close()

    routes = [
        Route("/", page),
        Route("/api/account", endpoint(account)),
        Route("/api/orders", endpoint(orders)),
        Route("/api/equity", endpoint(equity)),
        Route("/api/signals", endpoint(signals)),
        Route("/api/heatmap", endpoint(heatmap)),
        Route("/api/heatmap.png", endpoint(heatmap_png)),
        Route("/api/backtest", endpoint(backtest)),
        Route("/api/models", endpoint(models)),
        Route("/api/jobs", endpoint(jobs)),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)  # Route: GET (and HEAD) only


async def _desk(home: Home) -> "Desk":
    from mcp_trader.trading.desks import desk_of

    return await desk_of(home)


def _limit(request: Request, default: int) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InputError("limit", repr(text), "a whole number from 1 to 1000")
    return int(text)


async def _newest_feature_set(home: Home):
    for record in await (await home.features()).records():
        return record
    raise Missing("no feature set yet", "compute_confluence")


async def _heatmap(home: Home, feature_set_id: str) -> bytes:
    from mcp_trader.features.charts import confluence_heatmap
    from mcp_trader.features.spec import make_spec

    store = await home.features()
    record = await store.record(feature_set_id)
    frame = await asyncio.to_thread(store.table, feature_set_id)
    return await asyncio.to_thread(confluence_heatmap, frame, make_spec(record.timeframe, list(record.windows)))


async def _signals(home: Home) -> dict:
    """What an operator watches: the running paper loop's signals; else the newest model's; else the confluence
    rule over the newest feature set's assets."""
    from mcp_trader.trading.signals import SignalRequest, latest_signals

    source = None
    for job in await (await home.jobs(recover=False)).list(limit=50):
        if job.kind == "paper_trading" and job.status in ("queued", "running") and job.params.get("signals"):
            request, source = SignalRequest(**job.params["signals"]), f"the running paper loop ({job.id})"
            break
    else:
        newest = await (await home.models()).records(limit=1)
        if newest:
            request, source = SignalRequest(model_id=newest[0].id), f"the newest model ({newest[0].id})"
        else:
            try:
                record = await _newest_feature_set(home)
            except Missing:
                raise Missing("no model and no feature set yet", "train_model, or compute_confluence for the "
                              "confluence rule's signals") from None
            market = "perp" if ":" in record.symbols[0] else "spot"
            request = SignalRequest(strategy="confluence", symbols=record.symbols, timeframe=record.timeframe,
                                    market=market)
            source = f"the confluence rule over the newest feature set ({record.id})"
    report = await latest_signals(home, request)
    return {"source": source, **report.model_dump(mode="json", exclude={"data"})}
