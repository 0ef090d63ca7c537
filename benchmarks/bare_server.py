"""The baseline for start-up: a bare MCPServer with one tool, started the same way as ours."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def ping(text: str) -> str:
    """Echo."""
    return text


if __name__ == "__main__":
    server.run("stdio")
