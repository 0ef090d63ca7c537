"""MCP resources: URIs under trader:// that read stored artifacts."""

from mcp.server.mcpserver import MCPServer

from mcp_trader.home import Home
from mcp_trader.resources import backtests, datasets, exports, features, jobs, models, studies, trading


def register(server: MCPServer, home: Home, inference: bool = False) -> None:
    """All resources, or with `inference` those of what an inference service reads and makes (no backtests,
    feature sets or optimisation studies)."""
    datasets.register(server, home)
    if not inference:
        features.register(server, home)
    models.register(server, home)
    if not inference:
        backtests.register(server, home)
    exports.register(server, home)
    if not inference:
        studies.register(server, home)
    jobs.register(server, home)
    trading.register(server, home)
