"""A read-only monitoring page in the browser: `mcp-trader dashboard`, or /dashboard beside `serve --http`."""
