"""mcp-trader core library: market data, features, models, backtests and trading.

Nothing in this package imports `mcp`; the MCP surface lives in `server.py`, `tools/`
and `resources/`, which ship inside this package as `mcp_trader.server`, `mcp_trader.tools`
and `mcp_trader.resources`.
"""

from pathlib import Path

__version__ = "0.1.0"

# In a source checkout those modules sit beside this folder rather than inside it; extending
# the package path lets the same `mcp_trader.tools` imports work before and after installing.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "tools" / "__init__.py").is_file():
    __path__.append(str(_checkout))
