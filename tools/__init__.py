"""The MCP tools: one module per tool family, each thin (validate, call the core, shape the answer)."""

from mcp.server.mcpserver import MCPServer

from mcp_trader.tools import backtest, data, export, features, jobs, models, optimize, signals, trading


def register(server: MCPServer) -> None:
    data.register(server)
    features.register(server)
    models.register(server)
    backtest.register(server)
    export.register(server)
    optimize.register(server)
    jobs.register(server)
    signals.register(server)
    trading.register(server)
