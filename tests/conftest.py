"""Shared fixtures: a fresh home per test and an MCP client connected to a server built on it."""

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from importlib.util import find_spec
from pathlib import Path


def _numba_cache_for_these_sources() -> str:
    """numba's on-disk cache checks only the source file of the function it compiled, not what it inlines from other
    modules (the engine inlines mcp_trader.policy.kernel): a cache keyed by every core source, so tests never run
    machine code of an older kernel. Set before anything imports numba."""
    origin = find_spec("mcp_trader").origin  # type: ignore[union-attr]
    digest = hashlib.sha256()
    for path in sorted(Path(origin).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return str(Path(tempfile.gettempdir()) / f"mcp-trader-numba-{digest.hexdigest()[:16]}")


os.environ.setdefault("NUMBA_CACHE_DIR", _numba_cache_for_these_sources())

import pytest  # noqa: E402
from mcp import Client  # noqa: E402

from mcp_trader.config import Settings  # noqa: E402
from mcp_trader.server import build_server  # noqa: E402


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
