"""compute_confluence and the feature resources through an MCP client, offline on the bundled sample."""

import base64
import csv
import io
import json

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

SYMBOLS = ["ETH/USDT", "SOL/USDT", "XRP/USDT"]


async def confluence(client: Client, **args):
    result = await client.call_tool("compute_confluence", args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error_of(client: Client, **args) -> str:
    result = await client.call_tool("compute_confluence", args)
    assert result.is_error
    return result.content[0].text


async def test_tool_is_listed_with_its_contract(client: Client):
    tool = {t.name: t for t in (await client.list_tools()).tools}["compute_confluence"]
    assert tool.input_schema["properties"]["timeframe"]["enum"] == ["1h", "4h", "1d"]
    assert tool.annotations.destructive_hint is False
    assert {"feature_set_id", "assets", "strongest", "resources"} <= set(tool.output_schema["properties"])


async def test_snapshot_at_a_time_with_components_and_progress(client: Client):
    updates = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        updates.append((done, total, message))

    result = await client.call_tool(
        "compute_confluence", {"symbols": SYMBOLS, "as_of": "2024-06-01T00:30:00Z"}, progress_callback=progress
    )
    assert not result.is_error, result.content[0].text
    out = result.structured_content
    assert out["as_of"] == "2024-06-01T00:00:00+00:00"  # the bar open at as_of, never a later one
    assert out["windows"] == {"24h": 24, "7d": 168, "30d": 720}
    assert out["synthetic"] is False and out["cached"] is False
    assert {d["source"] for d in out["data"]} == {"sample"}
    symbols = [a["symbol"] for a in out["assets"]]
    assert sorted(symbols) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"]
    assert any("reference" in n for n in out["notes"])
    scores = [a["confluence_score"] for a in out["assets"]]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    for asset in out["assets"]:
        assert asset["time"] == out["as_of"]
        assert asset["confluence_score"] == pytest.approx(asset["direction"] * asset["alignment"], abs=1e-5)
        parts = asset["components"]
        assert -1 <= parts["corr_mkt_7d"] <= 1 and 0 <= parts["tech_alignment"] <= 1
    btc = next(a for a in out["assets"] if a["symbol"].startswith("BTC"))
    assert btc["components"]["corr_btc_24h"] is None  # against itself: left out, not a constant 1
    assert 1 <= len(out["strongest"]) <= 3
    assert all(s["stance"] == ("bullish" if s["confluence_score"] > 0 else "bearish") for s in out["strongest"])
    assert updates and updates[-1][0] == updates[-1][1]


async def test_resources_serve_the_table_heatmap_and_record(client: Client):
    out = await confluence(client, symbols=SYMBOLS, as_of="2024-06-01", days=45)
    fs = out["feature_set_id"]
    record = json.loads((await client.read_resource(f"trader://features/{fs}")).contents[0].text)
    assert record["rows"] == out["rows"] and len(record["columns"]) == out["columns"]
    assert [i["dataset_id"] for i in record["inputs"]] == [d["dataset_id"] for d in out["data"]]

    table = (await client.read_resource(out["resources"]["table"])).contents[0]
    assert table.mime_type == "text/csv"
    rows = list(csv.reader(io.StringIO(table.text)))
    assert rows[0] == ["time", "symbol", *record["columns"]]
    assert len(rows) - 1 == out["rows"]
    last = {r[1]: r for r in rows[1:] if r[0] == "2024-06-01T00:00Z"}
    score = record["columns"].index("confluence_score") + 2
    for asset in out["assets"]:  # the snapshot is the table's last row, not a separate computation
        assert float(last[asset["symbol"]][score]) == pytest.approx(asset["confluence_score"], abs=1e-6)

    image = (await client.read_resource(out["resources"]["heatmap"])).contents[0]
    assert image.mime_type == "image/png"
    assert base64.b64decode(image.blob)[:8] == b"\x89PNG\r\n\x1a\n"

    listing = json.loads((await client.read_resource("trader://features")).contents[0].text)
    assert [f["feature_set_id"] for f in listing["feature_sets"]] == [fs]


async def test_same_inputs_reuse_the_stored_feature_set(client: Client):
    first = await confluence(client, symbols=SYMBOLS, as_of="2024-06-01", days=45)
    again = await confluence(client, symbols=list(reversed(SYMBOLS)), as_of="2024-06-01", days=45)
    assert again["cached"] is True and again["feature_set_id"] == first["feature_set_id"]
    assert again["assets"] == first["assets"]
    other = await confluence(client, symbols=SYMBOLS, as_of="2024-06-01", days=45, windows=["12h", "3d"])
    assert other["feature_set_id"] != first["feature_set_id"] and other["windows"] == {"12h": 12, "3d": 72}


async def test_latest_offline_is_the_end_of_the_sample_and_says_so(client: Client):
    out = await confluence(client, symbols=["ETH/USDT", "BTC/USDT"], timeframe="4h", days=60)
    assert out["as_of"] == "2024-09-30T20:00:00+00:00"
    assert any("sample ends 2024-09-30" in n for n in out["notes"])


async def test_bad_input_gets_clear_errors_and_the_server_keeps_serving(client: Client):
    assert "symbols[1]" in await error_of(client, symbols=["ETH/USDT", "NOSUCH/USDT"], as_of="2024-06-01")
    one = await error_of(client, symbols=["ETH/USDT"], as_of="2024-06-01")
    assert "symbols" in one and "at least two" in one
    long = await error_of(client, symbols=SYMBOLS, as_of="2024-06-01", days=10, windows=["24h", "30d"])
    assert "windows" in long and "720 bars" in long and "240 bars" in long
    assert "timeframe" in await error_of(client, symbols=SYMBOLS, timeframe="2h")
    short = await error_of(client, symbols=SYMBOLS, timeframe="1d", windows=["24h"], as_of="2024-06-01")
    assert "windows" in short and "1 bars" in short
    assert "windows" in await error_of(client, symbols=SYMBOLS, windows=["3x"], as_of="2024-06-01")
    assert "days" in await error_of(client, symbols=SYMBOLS, days=0, as_of="2024-06-01")
    out = await confluence(client, symbols=SYMBOLS, as_of="2024-06-01", days=45)
    assert out["assets"]


async def test_unknown_feature_set_is_a_resource_error(client: Client):
    with pytest.raises(Exception, match="no feature set"):
        await client.read_resource("trader://features/fs-0000000000000000/table.csv")
