"""The MCP tools: one module per tool family, each thin (validate, call the core, shape the answer)."""

from mcp.server.mcpserver import MCPServer

from mcp_trader.tools import backtest, data, export, features, jobs, models, optimize, signals, trading


def register(server: MCPServer, inference: bool = False) -> None:
    """All the tools, or with `inference` only those a deployed inference service runs: signals from ONNX exports,
    fresh candles, paper / live orders and the account, the model and export listings, get_job. Nothing there
    needs the training stack, so torch, xgboost and optuna never load in that process."""
    data.register(server)
    if not inference:
        features.register(server)
    models.register(server, inference)
    if not inference:
        backtest.register(server)
    export.register(server, inference)
    if not inference:
        optimize.register(server)
    jobs.register(server, inference)
    signals.register(server, inference)
    trading.register(server, inference)
