"""The mcp-trader MCP server: tools and resources over stdio or streamable HTTP, and the CLI.

    mcp-trader serve                   stdio (what desktop clients and the Inspector launch)
    mcp-trader serve --http            streamable HTTP on 127.0.0.1:8000/mcp
    mcp-trader demo                    a scripted agent session against the bundled data
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
from synthetic data says so. Stored datasets are listed at trader://datasets."""

log = logging.getLogger("mcp_trader")


def build_server(settings: Settings | None = None) -> MCPServer:
    # Tools and resources are imported here, not at module top, so `mcp-trader --help` stays instant.
    from mcp_trader import resources, tools

    settings = settings or Settings()
    home = Home(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Home]:
        try:
            yield home
        finally:
            await home.close()

    server = MCPServer(
        "mcp-trader", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
        log_level=settings.log_level.upper(),
    )
    tools.register(server)
    resources.register(server, home)
    return server


def serve(args: argparse.Namespace) -> int:
    settings = Settings()
    _log_to_stderr(settings.log_level)
    server = build_server(settings)
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

    app = server.streamable_http_app(host=args.host)
    if settings.http_token:
        app = BearerAuth(app, settings.http_token)
    log.info("serving MCP over HTTP at http://%s:%d/mcp", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower())
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


def _log_to_stderr(level: str) -> None:
    # stdout belongs to the protocol on stdio; configured before MCPServer so this handler wins.
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=fmt)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mcp-trader", description="MCP server for AI-driven crypto trading research.")
    root.add_argument("--version", action="version", version=f"mcp-trader {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    run.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    run.add_argument("--host", default="127.0.0.1", help="HTTP bind address (non-loopback needs a token)")
    run.add_argument("--port", type=int, default=8000, help="HTTP port")
    run.set_defaults(func=serve)
    demo = commands.add_parser("demo", help="a scripted agent workflow on the bundled data, offline")
    demo.add_argument("--home", help="state folder for the demo (default: a fresh temporary one)")
    demo.set_defaults(func=_demo)
    return root


def _demo(args: argparse.Namespace) -> int:
    from mcp_trader.demo import run_demo

    return run_demo(args.home)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
