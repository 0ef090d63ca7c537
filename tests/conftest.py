"""Shared fixtures: a fresh home per test and an MCP client connected to a server built on it."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from mcp_trader.config import Settings
from mcp_trader.server import build_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", offline=True)


@pytest.fixture
async def client(offline_settings: Settings) -> AsyncIterator[Client]:
    """An in-process client on the current protocol, server offline (sample and synthetic only)."""
    async with Client(build_server(offline_settings)) as connected:
        yield connected
