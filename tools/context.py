"""What every tool needs from a request: the home, and core errors turned into tool errors."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_trader.errors import InputError, NotFoundError, Refused
from mcp_trader.home import Home


def home_of(ctx: Context) -> Home:
    return ctx.request_context.lifespan_context


@asynccontextmanager
async def tool_errors() -> AsyncIterator[None]:
    """Show bad input and missing things to the agent as tool errors, in the core's words."""
    try:
        yield
    except (InputError, NotFoundError, Refused) as error:
        raise ToolError(str(error)) from error
