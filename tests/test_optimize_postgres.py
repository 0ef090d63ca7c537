"""One study in a real PostgreSQL server shared by the MCP server and two worker processes at once: every trial
is counted once, none is lost or left running, and the database password never shows."""

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp_calls import call, read_json, read_text
from postgres_server import PASSWORD, postgres_url

from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

STUDY = {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "days": 150, "as_of": "2024-09-30", "folds": 2,
         "target": "confluence", "n_trials": 2, "study": "shared", "wait_seconds": 300}
PER_WORKER = 5


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url() as address:
        yield address


@pytest.fixture(scope="module")
async def mcp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    settings = Settings(home=tmp_path_factory.mktemp("pg") / "home", offline=True)
    async with Client(build_server(settings)) as connected:
        yield connected


def worker(url: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "mcp_trader.server", "optimize-worker", "--study", "shared", "--storage", url,
         "--trials", str(PER_WORKER), "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


async def test_two_workers_share_one_postgresql_study(mcp: Client, url: str, tmp_path: Path):
    created = (await call(mcp, "optimize", {**STUDY, "storage": url}))["result"]
    assert created["trials"]["total"] == 2
    assert PASSWORD not in json.dumps(created) and "trader:***@127.0.0.1" in created["storage"]

    workers = [worker(url, tmp_path / f"w{i}") for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
        assert json.loads(out)["this_run"] == PER_WORKER
        assert PASSWORD not in out + err

    trials = (await read_json(mcp, "trader://studies/shared/trials"))["trials"]
    total = 2 + 2 * PER_WORKER
    assert [t["number"] for t in trials] == list(range(total))  # none lost, none doubled
    assert {t["state"] for t in trials} <= {"complete", "pruned"}  # none failed or left running
    assert len({t["worker"] for t in trials}) == 3
    summary = await read_json(mcp, "trader://studies/shared")
    assert summary["trials"]["total"] == total and summary["deflated"]["trials"] == total
    listing = await read_text(mcp, "trader://studies")
    jobs = await read_text(mcp, "trader://jobs")
    assert PASSWORD not in listing + jobs + json.dumps(summary)
