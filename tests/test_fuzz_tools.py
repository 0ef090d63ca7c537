"""Every tool's contract under fire: seeded invalid calls generated from the published inputSchemas, and hostile
resource URIs, sent to the installed server over stdio through a real MCP client. Each invalid call must be a tool
error naming the broken field, within seconds; nothing may be written; the server must still answer afterwards."""

import collections
import hashlib
import random
import sqlite3
from pathlib import Path

import anyio
import pytest
from fuzz_schema import MUTATIONS, ToolFuzzer
from mcp import Client
from mcp.shared.exceptions import MCPError
from test_server_process import stdio

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SEED = 20261204
CALL_TIMEOUT_S = 20
SENTINEL = "sentinel-outside-the-home-7f3a9c"


def snapshot(home: Path) -> dict[str, str]:
    """Every file's digest, and each SQLite database by its content (its -wal and -shm files change on reads)."""
    state = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        name = str(path.relative_to(home))
        if name.endswith(("-wal", "-shm")):
            continue
        if path.suffix in (".db", ".sqlite", ".sqlite3"):
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                state[name] = "\n".join(db.iterdump())
        else:
            state[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.mark.parametrize(("flags", "per_tool"), [([], 34), (["--inference"], 20)], ids=["full", "inference"])
async def test_invalid_calls_from_the_schemas_are_refused_naming_the_field(tmp_path, flags, per_tool):
    home = tmp_path / "home"
    params = stdio(home)
    params.args.extend(flags)
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        assert all(tool.input_schema["additionalProperties"] is False for tool in tools)
        assert (await client.call_tool("list_models", {})).is_error is False  # the home and its database exist
        before = snapshot(home)
        rng = random.Random(SEED)
        counts: collections.Counter = collections.Counter()
        for tool in tools:
            for case in ToolFuzzer(tool.name, tool.input_schema, rng).cases(per_tool):
                with anyio.fail_after(CALL_TIMEOUT_S):
                    result = await client.call_tool(case.tool, case.arguments)
                text = result.content[0].text if result.content else ""
                assert result.is_error, f"{case.mutation} accepted: {case.tool}({str(case.arguments)[:300]})"
                assert case.field[:40] in text, f"{case.mutation}: {case.tool} error names no {case.field!r}: {text}"
                counts[case.mutation] += 1
                counts[case.tool] += 1
        total = sum(counts[t.name] for t in tools)
        mutations = {m: counts[m] for m in MUTATIONS}
        print(f"\nfuzz ({' '.join(flags) or 'full'}): {total} invalid calls over {len(tools)} tools, all refused "
              f"naming the field; by mutation: {mutations}")
        assert total >= per_tool * len(tools) * 0.9 and all(counts[t.name] > 0 for t in tools)
        assert snapshot(home) == before, "a refused call wrote to the home"
        assert len((await client.list_tools()).tools) == len(tools)
        assert (await client.call_tool("list_models", {})).is_error is False


async def test_resource_uris_never_reach_outside_the_home(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "secret.json").write_text(SENTINEL)
    (tmp_path / "secret.parquet").write_text(SENTINEL)
    outside = str(tmp_path / "secret.json")
    uris = [
        "trader://models/../../secret.json", "trader://models/..%2F..%2Fsecret.json",
        "trader://models/%2e%2e%2f%2e%2e%2fsecret.json/feature-importances.json",
        "trader://features/..%2F..%2Fsecret/table.csv", "trader://features/../../secret/heatmap.png",
        f"trader://exports/{outside}", f"trader://exports/{outside.replace('/', '%2F')}", f"trader:///{outside}",
        f"file://{outside}", "trader://backtests/..%2F..%2Fsecret/trades", "trader://backtests/%00/equity",
        "trader://studies/..%2F..%2Fsecret/trials", "trader://jobs/..%2F..%2Fsecret",
        "trader://accounts/..%2F..%2Fsecret/equity", "trader://accounts/live%2F..%2F..%2F/ledger",
        "trader://datasets/..%2F..%2Fsecret", "trader://models/" + "a" * 20_000,
        "trader://backtests/" + "%2F.." * 2_000,
    ]
    async with Client(stdio(home)) as client:
        await client.call_tool("list_models", {})
        before = snapshot(home)
        for uri in uris:
            with anyio.fail_after(CALL_TIMEOUT_S), pytest.raises(MCPError) as refused:
                await client.read_resource(uri)
            assert SENTINEL not in str(refused.value), uri
        assert snapshot(home) == before
        assert "trader://models" in {str(r.uri) for r in (await client.list_resources()).resources}
