"""The mcp-trader MCP server: tools and resources over stdio or streamable HTTP, and the CLI.

    mcp-trader serve                   stdio (what desktop clients and the Inspector launch)
    mcp-trader serve --http            streamable HTTP on 127.0.0.1:8000/mcp (and the dashboard at /dashboard/)
    mcp-trader serve --http --inference  the deployable inference service: ONNX signals and orders, no training stack
    mcp-trader dashboard               the read-only monitoring page on http://127.0.0.1:8050/
    mcp-trader demo                    a scripted agent session against the bundled data
    mcp-trader features validate       build a feature set, print its validation table, write charts
    mcp-trader optimize-worker         join an optimisation study and run trials
    python server.py ...               the same as mcp-trader ...
"""

import argparse
import hmac
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer

from mcp_trader import __version__
from mcp_trader.config import Settings
from mcp_trader.home import Home

INSTRUCTIONS = """mcp-trader: crypto market research and trading tools.
Start with collect_data to store candles; every result names its data source, and anything built
from synthetic data says so. compute_confluence shows the cross-asset picture, train_model scores a
model out of sample, run_backtest trades its signals (or the confluence rule) with costs and risk
rules. Long work runs as jobs (get_job). Stored things are listed at trader://datasets,
trader://features, trader://models and trader://backtests."""

log = logging.getLogger("mcp_trader")
DEFAULT_VALIDATE_START = "2021-01-01"  # with the default --as-of: the bundled sample's whole span


def build_server(settings: Settings | None = None, home: Home | None = None,
                 inference: bool | None = None) -> MCPServer:
    """The MCP server on `home` (made from settings when not given; the server's lifespan closes it). With
    `inference` (default: MCP_TRADER_INFERENCE_ONLY) only the tools of a deployed inference service, under which
    torch, xgboost and optuna never load."""
    # Tools and resources are imported here, not at module top, so `mcp-trader --help` stays instant.
    from mcp_trader import resources, tools
    from mcp_trader.tools.contract import StrictServer

    settings = settings or (home.settings if home else Settings())
    home = home or Home(settings)
    inference = settings.inference_only if inference is None else inference

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Home]:
        try:
            yield home
        finally:
            await home.close()

    server = StrictServer(
        "mcp-trader", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
        log_level=settings.log_level.upper(),
    )
    tools.register(server, inference)
    resources.register(server, home, inference)
    return server


def serve(args: argparse.Namespace) -> int:
    settings = Settings()
    _log_to_stderr(settings)
    inference = args.inference or settings.inference_only
    home = Home(settings)
    server = build_server(settings, home, inference)
    if not args.http:
        server.run("stdio")
        return 0
    if not _is_loopback(args.host) and not settings.http_token:
        print(
            f"refusing to bind {args.host}: outside loopback the HTTP transport needs a bearer token; "
            "set MCP_TRADER_HTTP_TOKEN",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from mcp_trader.service import Service

    app = server.streamable_http_app(host=args.host)
    if not inference:  # its signals may run a native learner
        _mount_dashboard(app, home, args.host, settings)
    if settings.http_token:
        app = BearerAuth(app, settings.http_token)
    app = Service(app, settings, inference)  # GET /health without the token; a log line per request
    log.info("serving MCP over HTTP at http://%s:%d/mcp%s", args.host, args.port, " (inference only)" * inference)
    # Our handler formats uvicorn's lines too (log_config=None); Service writes one line per request.
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), log_config=None,
                access_log=False)
    return 0


def _mount_dashboard(app, home: Home, host: str, settings: Settings) -> None:
    """The read-only dashboard at /dashboard/, on the MCP server's own home (the bearer token covers it too)."""
    from starlette.routing import Mount

    from mcp_trader.dashboard.app import dashboard_app

    app.router.routes.append(Mount("/dashboard", app=dashboard_app(home, allowed_hosts=_hosts(host, settings))))


def _hosts(host: str, settings: Settings) -> list[str] | None:
    """Host headers the dashboard answers: on loopback without a token only local names (no DNS rebinding)."""
    if settings.http_token or not _is_loopback(host):
        return None
    return sorted({"127.0.0.1", "localhost", host})


def dashboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    settings = Settings(home=Path(args.home)) if args.home else Settings()
    _log_to_stderr(settings)
    if not _is_loopback(args.host) and not settings.http_token:
        print(f"refusing to bind {args.host}: outside loopback the dashboard needs a bearer token; "
              "set MCP_TRADER_HTTP_TOKEN", file=sys.stderr)
        return 2
    import uvicorn

    from mcp_trader.dashboard.app import dashboard_app

    app = dashboard_app(Home(settings), own_home=True, allowed_hosts=_hosts(args.host, settings))
    if settings.http_token:
        app = BearerAuth(app, settings.http_token)
    log.info("dashboard (read-only) at http://%s:%d/", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), access_log=False)
    return 0


class BearerAuth:
    """ASGI wrapper that answers 401 unless the request carries `Authorization: Bearer <token>`."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error":"missing or wrong bearer token"}'})
                return
        await self.app(scope, receive, send)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_to_stderr(settings: Settings) -> None:
    # stdout belongs to the protocol on stdio; configured before MCPServer so this handler wins.
    from mcp_trader.service import configure_logging

    configure_logging(settings)  # text, or JSON lines with MCP_TRADER_LOG_FORMAT=json; secrets redacted


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mcp-trader", description="MCP server for AI-driven crypto trading research.")
    root.add_argument("--version", action="version", version=f"mcp-trader {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    run.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    run.add_argument("--host", default="127.0.0.1", help="HTTP bind address (non-loopback needs a token)")
    run.add_argument("--port", type=int, default=8000, help="HTTP port")
    run.add_argument("--inference", action="store_true",
                     help="inference service: ONNX signals, candles, orders and listings only, no training tools "
                          "(torch and xgboost never load); also MCP_TRADER_INFERENCE_ONLY=1")
    run.set_defaults(func=serve)
    board = commands.add_parser(
        "dashboard", help="a read-only monitoring page in the browser (signals, P&L, orders, jobs)",
        description="Serve a read-only web page of live signals, the paper/live account, equity, positions and "
        "orders, the confluence heatmap, the latest backtest and models, and job progress; it polls every 2 s "
        "and never places orders. Outside loopback it needs MCP_TRADER_HTTP_TOKEN and then requires it.",
    )
    board.add_argument("--host", default="127.0.0.1", help="bind address (non-loopback needs a token)")
    board.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    board.add_argument("--home", help="state folder (default: MCP_TRADER_HOME or ~/.mcp-trader)")
    board.set_defaults(func=dashboard)
    demo = commands.add_parser("demo", help="a scripted agent workflow on the bundled data, offline")
    demo.add_argument("--home", help="state folder for the demo (default: a fresh temporary one)")
    demo.set_defaults(func=_demo)
    features = commands.add_parser("features", help="feature-set tools").add_subparsers(dest="action", required=True)
    check = features.add_parser(
        "validate", help="build a feature set and report NaN rates, distributions and rank ICs, with charts",
        description="Build (or reuse) a feature set and report each feature's NaN rate, distribution and rank IC "
        "against the forward return over --horizon bars; writes report.json and two PNG charts. Network sources "
        "are used unless MCP_TRADER_OFFLINE is set.",
    )
    check.add_argument("--symbols", help="comma-separated, e.g. BTC/USDT,ETH/USDT (default: 10 sample assets)")
    check.add_argument("--timeframe", default="1h", help="1h, 4h or 1d (default 1h)")
    check.add_argument("--start", help=f"first bar, ISO date/time, UTC (default {DEFAULT_VALIDATE_START} or --days)")
    check.add_argument("--as-of", default="2024-09-30T23:00", help="last bar, ISO time, UTC (default 2024-09-30T23:00)")
    check.add_argument("--days", type=int, help="days of history before --as-of, instead of --start")
    check.add_argument("--windows", help="comma-separated windows such as 24h,7d,30d (default: per timeframe)")
    check.add_argument("--market", default="perp", help="perp or spot (default perp)")
    check.add_argument("--horizon", type=int, default=24, help="bars ahead of the evaluation forward return (24)")
    check.add_argument("--out", help="report folder (default: <home>/reports/features-<feature-set-id>)")
    check.add_argument("--home", help="state folder (default: MCP_TRADER_HOME or ~/.mcp-trader)")
    check.set_defaults(func=_features_validate)
    worker = commands.add_parser(
        "optimize-worker", help="join an optimisation study and run trials in this process",
        description="Load a study made by the optimize tool from its storage, rebuild its data (refused if the "
        "candles differ), and run trials until --trials are done here, or until the study holds the number of "
        "trials its creator asked for. Several workers on several machines can share one PostgreSQL storage.",
    )
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--storage", required=True, help="its storage URL, e.g. postgresql://user:pw@host/db")
    worker.add_argument("--trials", type=int, help="trials to run in this worker (default: up to the study's total)")
    worker.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    worker.add_argument("--home", help="state folder for the data (default: MCP_TRADER_HOME or ~/.mcp-trader)")
    worker.set_defaults(func=_optimize_worker)
    reset = commands.add_parser(
        "reset-daily-stop", help="lift the daily loss stop of an account (a person's decision: no tool does this)",
        description="Lift today's daily loss stop and restart the day's loss count at the current equity.",
    )
    reset.add_argument("--mode", choices=("paper", "live"), default="paper", help="the account (default paper)")
    reset.add_argument("--home", help="state folder (default: MCP_TRADER_HOME or ~/.mcp-trader)")
    reset.set_defaults(func=_reset_daily_stop)
    return root


def _reset_daily_stop(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    settings = Settings(home=Path(args.home)) if args.home else Settings()

    async def reset() -> str:
        home = Home(settings)
        try:
            from mcp_trader.trading.desks import desk_of

            valuation = await (await desk_of(home)).reset_daily_stop(args.mode)
            return f"{args.mode} account: daily loss stop lifted; the day restarts at equity {valuation.equity:,.2f}"
        finally:
            await home.close()

    print(asyncio.run(reset()))
    return 0


def _optimize_worker(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcp_trader.errors import InputError, NotFoundError
    from mcp_trader.optimize.study import join

    settings = Settings(home=Path(args.home)) if args.home else Settings()
    _log_to_stderr(settings)
    if args.trials is not None and args.trials < 1:
        print("error: trials: at least 1", file=sys.stderr)
        return 2
    try:
        summary = join(Home(settings), args.study, args.storage, args.trials, args.timeout,
                       log=lambda message: print(message, file=sys.stderr, flush=True))
    except (InputError, NotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.model_dump_json(indent=1))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mcp_trader.demo import run_demo

    return run_demo(args.home)


def _features_validate(args: argparse.Namespace) -> int:
    # Everything heavy (pandas, numba, TA-Lib, matplotlib) loads here, never at server start.
    import asyncio
    from pathlib import Path

    from mcp_trader.errors import InputError
    from mcp_trader.features.validate import format_report, validation_report, write_report

    try:
        settings = Settings(home=Path(args.home)) if args.home else Settings()
        fs = asyncio.run(_build_feature_set(args, settings))
        report = validation_report(fs, args.horizon)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else settings.home_dir / "reports" / f"features-{fs.id}"
    paths = write_report(report, fs, out)
    print(format_report(report))
    for note in fs.notes:
        print(f"note: {note}")
    print("\nwrote:")
    for path in paths:
        print(f"  {path}")
    return 0


async def _build_feature_set(args: argparse.Namespace, settings: Settings):
    from datetime import datetime

    from pydantic import ValidationError

    from mcp_trader.data.sources.sample import ASSETS
    from mcp_trader.errors import InputError
    from mcp_trader.features.dataset import FeatureRequest, build_feature_set

    def when(field: str, text: str | None) -> datetime | None:
        try:
            return None if text is None else datetime.fromisoformat(text)
        except ValueError:
            raise InputError(field, f"cannot read {text!r} as a date or time", "ISO 8601, e.g. 2024-06-01 or "
                             "2024-06-01T12:00 (UTC unless an offset is given)") from None

    def listed(text: str | None) -> list[str] | None:
        return None if text is None else [part.strip() for part in text.split(",") if part.strip()]

    if args.horizon < 1:  # checked again against the feature set's length; this saves building it first
        raise InputError("horizon", f"{args.horizon} bars", "a whole number of bars, at least 1")
    symbols = listed(args.symbols) or [f"{base}/USDT" for base in ASSETS[:10]]
    start = when("start", args.start or (None if args.days is not None else DEFAULT_VALIDATE_START))
    try:
        request = FeatureRequest(
            symbols=symbols, timeframe=args.timeframe, windows=listed(args.windows), as_of=when("as_of", args.as_of),
            days=args.days, start=start, market=args.market,
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(".".join(map(str, first["loc"])) or "arguments", first["msg"]) from None
    home = Home(settings)
    try:
        return await build_feature_set(home, request)
    finally:
        await home.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
