"""What every tool needs from a request: the home, and core errors turned into tool errors."""

import inspect
from collections.abc import AsyncIterator, Callable
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


def no_unknown_arguments(ctx: Context, tool: Callable) -> None:
    """The SDK drops arguments a tool does not take; a misspelt one would silently change the answer, and one that
    looks like a setting (a risk limit) must be seen to have no effect."""
    accepted = sorted(set(inspect.signature(tool).parameters) - {"ctx"})
    unknown = sorted(set(given_arguments(ctx)) - set(accepted))
    if unknown:
        raise InputError(unknown[0], f"is not an argument of {tool.__name__}", ", ".join(accepted))


def given_arguments(ctx: Context) -> dict:
    """The arguments of the tool call as the client sent them."""
    params = ctx.request_context.params
    given = getattr(params, "arguments", None) if params is not None and not isinstance(params, dict) else \
        (params or {}).get("arguments")
    return given or {}
