"""Calls through an MCP client that tests share: a tool's structured answer, its error text, a resource's text."""

import json

from mcp import Client


async def call(client: Client, tool: str, args: dict, **kwargs) -> dict:
    result = await client.call_tool(tool, args, **kwargs)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error_of(client: Client, tool: str, args: dict) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def read_text(client: Client, uri: str) -> str:
    return (await client.read_resource(uri)).contents[0].text


async def read_json(client: Client, uri: str) -> dict:
    return json.loads(await read_text(client, uri))
