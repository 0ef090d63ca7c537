"""collect_data and the dataset resources through an MCP client, offline (sample and synthetic)."""

import json
from pathlib import Path

import pytest
from mcp import Client

from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio


async def collect(client: Client, **args):
    result = await client.call_tool("collect_data", args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_tool_is_listed_with_truthful_annotations(client: Client):
    tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools["collect_data"]
    assert tool.annotations.read_only_hint is False
    assert tool.annotations.destructive_hint is False
    assert tool.annotations.open_world_hint is True
    assert tool.annotations.idempotent_hint is True
    schema = tool.input_schema["properties"]
    assert schema["timeframes"]["items"]["enum"] == ["1h", "4h", "1d"]
    assert "collection_id" in tool.output_schema["properties"]


async def test_offline_falls_through_to_the_sample_and_says_why(client: Client):
    out = await collect(client, symbols=["BTC/USDT", "ETH/USDT"], timeframes=["1h"], days=30)
    assert [d["source"] for d in out["datasets"]] == ["sample", "sample"]
    attempts = out["datasets"][0]["attempts"]
    assert [(a["source"], a["outcome"]) for a in attempts] == [
        ("aster", "skipped"), ("binance", "skipped"), ("coingecko", "skipped"), ("sample", "served")
    ]
    assert all("offline" in a["reason"] for a in attempts[:3])
    btc = out["datasets"][0]
    assert btc["rows"] == 30 * 24 and btc["end"] == "2024-09-30T23:00:00Z"
    assert any("sample ends 2024-09-30" in n for n in btc["notes"])
    assert any("standing in for the perpetual" in n for n in btc["notes"])
    assert out["synthetic"] is False


async def test_coarser_timeframes_are_resampled_and_say_so(client: Client):
    out = await collect(client, symbols=["BTC/USDT"], timeframes=["1h", "4h", "1d"],
                        start="2024-03-01", end="2024-03-08", market="spot")
    by_tf = {d["timeframe"]: d for d in out["datasets"]}
    assert by_tf["1h"]["resampled_from"] is None and by_tf["1h"]["rows"] == 7 * 24
    assert by_tf["4h"]["resampled_from"] == "1h" and by_tf["4h"]["rows"] == 7 * 6
    assert by_tf["1d"]["rows"] == 7 and any("resampled from 1h" in n for n in by_tf["1d"]["notes"])
    # The 1d bar of 2024-03-01 is built from that day's 24 real hourly candles.
    from mcp_trader.data.sources.sample import load

    hours = load("BTC").loc["2024-03-01"]
    record = json.loads((await client.read_resource("trader://datasets/sample.BTC-USDT.1d")).contents[0].text)
    assert record["first_time"] == "2024-03-01T00:00:00Z"
    from mcp_trader.data.store import CandleStore

    day = CandleStore(Path(record["path"]).parents[3]).read(Path(record["path"])).iloc[0]
    assert day["open"] == hours["open"].iloc[0] and day["close"] == hours["close"].iloc[-1]
    assert day["high"] == hours["high"].max() and day["low"] == hours["low"].min()
    assert day["volume"] == pytest.approx(hours["volume"].sum())


async def test_second_call_fetches_only_what_is_missing(client: Client):
    first = await collect(client, symbols=["SOL/USDT"], start="2024-01-01", end="2024-02-01", sources=["sample"])
    assert first["datasets"][0]["new_rows"] == 31 * 24
    again = await collect(client, symbols=["SOL/USDT"], start="2024-01-01", end="2024-02-01", sources=["sample"])
    assert again["datasets"][0]["new_rows"] == 0
    assert again["datasets"][0]["content_hash"] == first["datasets"][0]["content_hash"]
    wider = await collect(client, symbols=["SOL/USDT"], start="2024-01-01", end="2024-02-08", sources=["sample"])
    assert wider["datasets"][0]["new_rows"] == 7 * 24 and wider["datasets"][0]["rows"] == 38 * 24
    record = json.loads((await client.read_resource("trader://datasets/sample.SOL-USDT-PERP.1h")).contents[0].text)
    ranges = record["provenance"]["ranges"]
    assert [(r["start"], r["end"]) for r in ranges] == [
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"), ("2024-02-01T00:00:00Z", "2024-02-08T00:00:00Z")
    ]
    assert all(r["source"] == "sample" and r["fetched_at"] for r in ranges)


async def test_window_past_the_sample_is_served_synthetic_and_labelled(client: Client):
    out = await collect(client, symbols=["BTC/USDT"], start="2025-06-01", end="2025-06-08")
    ds = out["datasets"][0]
    assert ds["source"] == "synthetic" and ds["synthetic"] is True and out["synthetic"] is True
    assert ("sample", "no_data") in [(a["source"], a["outcome"]) for a in ds["attempts"]]
    assert "SYNTHETIC" in out["summary"] and any("SYNTHETIC" in n for n in ds["notes"])
    listing = json.loads((await client.read_resource("trader://datasets")).contents[0].text)["datasets"]
    assert listing[0]["synthetic"] is True


async def test_dataset_resource_has_provenance_and_quality(client: Client):
    await collect(client, symbols=["BTC/USDT"], start="2021-02-10", end="2021-02-12", market="spot")
    record = json.loads((await client.read_resource("trader://datasets/sample.BTC-USDT.1h")).contents[0].text)
    quality = record["quality"]
    # Binance's maintenance hour 2021-02-11 04:00 is missing and 03:00 is a zero-volume candle.
    assert quality["gap_count"] == 1 and quality["missing_bars"] == 1
    assert quality["largest_gaps"][0]["start"] == "2021-02-11T04:00Z"
    assert quality["zero_volume_bars"] == 1
    assert record["rows"] == 47 and record["provenance"]["package_version"]
    assert record["content_hash"] == record["provenance"]["content_hash"]


async def test_unknown_dataset_resource_is_a_clear_error(client: Client):
    with pytest.raises(Exception, match="no dataset 'nope'"):
        await client.read_resource("trader://datasets/nope")


BAD_INPUTS = [
    ({"symbols": ["NOPE/USDT"]}, "symbols[0]"),
    ({"symbols": ["BTC-USDT"]}, "symbols[0]"),
    ({"symbols": ["BTC/XYZ"]}, "quote"),
    ({"symbols": []}, "symbols"),
    ({"symbols": ["BTC/USDT"], "timeframes": ["2h"]}, "timeframes"),
    ({"symbols": ["BTC/USDT"], "days": 0}, "days"),
    ({"symbols": ["BTC/USDT"], "days": -5}, "days"),
    ({"symbols": ["BTC/USDT"], "days": 100000}, "days"),
    ({"symbols": ["BTC/USDT"], "days": 7, "start": "2024-01-01"}, "days"),
    ({"symbols": ["BTC/USDT"], "start": "2024-02-01", "end": "2024-01-01"}, "start"),
    ({"symbols": ["BTC/USDT"], "start": "2024-01-01T00:00", "end": "2024-01-01T00:30"}, "end"),
    ({"symbols": ["BTC/USDT"], "start": "1999-01-01"}, "start"),
    ({"symbols": ["BTC/USDT"], "sources": ["kraken"]}, "sources"),
    ({"symbols": ["BTC/USDT"], "sources": []}, "sources"),
    ({"symbols": ["BTC/USDT"], "market": "options"}, "market"),
]


@pytest.mark.parametrize(("args", "field"), BAD_INPUTS)
async def test_bad_input_is_a_tool_error_naming_the_field(client: Client, offline_settings: Settings, args, field):
    result = await client.call_tool("collect_data", args)
    assert result.is_error
    text = result.content[0].text
    assert field in text
    assert "accepted" in text or "Input should be" in text or "not before" in text or "either" in text
    # Nothing was written, and the server still serves.
    listing = json.loads((await client.read_resource("trader://datasets")).contents[0].text)["datasets"]
    assert listing == []
    candles_dir = offline_settings.candles_dir
    assert not candles_dir.exists() or not any(p.is_file() for p in candles_dir.rglob("*"))
    ok = await client.call_tool("collect_data", {"symbols": ["BTC/USDT"], "days": 1})
    assert not ok.is_error


async def test_unknown_symbol_among_good_ones_writes_nothing(client: Client, offline_settings: Settings):
    result = await client.call_tool("collect_data", {"symbols": ["BTC/USDT", "ETH/USDT", "NOPE/USDT"]})
    assert result.is_error and "symbols[2]" in result.content[0].text
    assert not offline_settings.candles_dir.exists()


async def test_explicit_synthetic_source_serves_any_symbol(client: Client):
    out = await collect(client, symbols=["NEWCOIN/USDT"], sources=["synthetic"], days=3)
    assert out["datasets"][0]["synthetic"] and out["datasets"][0]["rows"] == 72


async def test_progress_is_reported_per_symbol_and_timeframe(client: Client):
    seen = []

    async def progress(done, total, message):
        seen.append((done, total, message))

    result = await client.call_tool(
        "collect_data", {"symbols": ["BTC/USDT", "ETH/USDT"], "timeframes": ["1h", "1d"], "days": 5},
        progress_callback=progress,
    )
    assert not result.is_error
    assert [(d, t) for d, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "ETH/USDT" in seen[-1][2]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_handshakes_work(offline_settings: Settings, mode: str):
    async with Client(build_server(offline_settings), mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        out = await collect(client, symbols=["XRP/USDT"], days=2)
        assert out["datasets"][0]["rows"] == 48


async def test_a_call_served_from_the_store_keeps_its_notes(client: Client):
    args = {"symbols": ["BTC/USDT"], "timeframes": ["4h"], "start": "2025-06-01", "end": "2025-06-08"}
    first, again = await collect(client, **args), await collect(client, **args)
    assert again["datasets"][0]["new_rows"] == 0
    assert again["datasets"][0]["notes"] == first["datasets"][0]["notes"]
    assert any("SYNTHETIC" in n for n in again["datasets"][0]["notes"])
    assert again["datasets"][0]["quality"] == first["datasets"][0]["quality"]
