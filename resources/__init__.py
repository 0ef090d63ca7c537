"""MCP resources: URIs under trader:// that read stored artifacts."""

from mcp.server.mcpserver import MCPServer

from mcp_trader.home import Home
from mcp_trader.resources import backtests, datasets, exports, features, jobs, models, studies, trading


def register(server: MCPServer, home: Home) -> None:
    datasets.register(server, home)
    features.register(server, home)
    models.register(server, home)
    backtests.register(server, home)
    exports.register(server, home)
    studies.register(server, home)
    jobs.register(server, home)
    trading.register(server, home)
