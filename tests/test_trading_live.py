"""Live orders through MCP against the fake Aster V3 venue on 127.0.0.1: the opt-in, the per-order confirmation
(preview, token, expiry, single use), faults that lose the venue's answer, reconciliation on start, and a canary
private key that never shows in any answer, resource or log of the server process."""

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import ccxt
import pytest
from fakes.aster_v3 import DEMO_AGENT, DEMO_AGENT_KEY, DEMO_USER, FakeAsterV3, running
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_calls import call, error_of, read_text
from test_server_process import command

from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio
ORDER = {"symbol": "BTC", "side": "buy", "quantity": 0.01, "mode": "live"}
CANARY_KEY = "0x" + "5eed" * 16  # a valid secp256k1 key: registered as an agent of its own address


@pytest.fixture
def fake() -> FakeAsterV3:
    with running() as venue:
        yield venue


def live_settings(fake: FakeAsterV3, home: Path, **overrides: Any) -> Settings:
    values = {"home": home, "offline": True, **fake.urls(), "live_trading": True, "request_timeout_s": 1.0,
              "backoff_s": 0.05, "aster_user": DEMO_USER, "aster_signer": DEMO_AGENT,
              "aster_private_key": DEMO_AGENT_KEY}
    return Settings(**(values | overrides))


async def test_a_live_order_is_sent_only_with_its_token_and_once(fake: FakeAsterV3, tmp_path: Path):
    async with Client(build_server(live_settings(fake, tmp_path / "home"))) as client:
        preview = await call(client, "place_order", ORDER)
        assert preview["outcome"] == "preview" and preview["confirm_token"] and preview["order"] is None
        assert preview["estimate"]["fee"] > 0 and preview["risk"]["notional"] > 0
        assert fake.submissions() == []  # a preview sends nothing
        placed = await call(client, "place_order", {**ORDER, "confirm_token": preview["confirm_token"]})
        assert placed["outcome"] == "placed" and placed["order"]["status"] == "filled"
        assert placed["fills"] and placed["fills"][0]["fee"] > 0
        assert len(fake.venue_orders(placed["order"]["client_order_id"])) == 1
        reused = await error_of(client, "place_order", {**ORDER, "confirm_token": preview["confirm_token"]})
        assert "confirm_token" in reused and "already used" in reused
        other = await call(client, "place_order", ORDER)
        changed = await error_of(client, "place_order", {**ORDER, "quantity": 0.02,
                                                          "confirm_token": other["confirm_token"]})
        assert "confirm_token" in changed and "quantity" in changed
        assert "confirm_token" in await error_of(client, "place_order", {**ORDER, "confirm_token": "made-up"})
        assert len(fake.venue_orders()) == 1
        pnl = await call(client, "get_pnl", {"mode": "live"})
        assert pnl["positions"][0]["quantity"] == pytest.approx(0.01) and pnl["ledger_balanced"]


async def test_a_token_expires(fake: FakeAsterV3, tmp_path: Path):
    async with Client(build_server(live_settings(fake, tmp_path / "home", confirm_ttl_s=0.5))) as client:
        preview = await call(client, "place_order", ORDER)
        await asyncio.sleep(1.2)
        text = await error_of(client, "place_order", {**ORDER, "confirm_token": preview["confirm_token"]})
        assert "confirm_token" in text and "expired" in text
        assert fake.submissions() == []


async def test_live_is_refused_unless_enabled(fake: FakeAsterV3, tmp_path: Path):
    async with Client(build_server(live_settings(fake, tmp_path / "home", live_trading=False))) as client:
        text = await error_of(client, "place_order", ORDER)
        assert "mode" in text and "not enabled" in text
    assert fake.submissions() == []


@pytest.mark.parametrize("fault", ["timeout_after_accept", "503_after_accept", "503", "429", "nonce_expired"])
async def test_a_lost_answer_never_doubles_or_loses_the_order(fake: FakeAsterV3, tmp_path: Path, fault: str):
    async with Client(build_server(live_settings(fake, tmp_path / "home"))) as client:
        preview = await call(client, "place_order", {**ORDER, "client_order_id": f"f-{fault[:20]}"})
        fake.fail(fault, times=1, delay_s=2)
        placed = await call(client, "place_order", {**ORDER, "client_order_id": f"f-{fault[:20]}",
                                                    "confirm_token": preview["confirm_token"]})
        assert placed["order"]["status"] == "filled", placed
        assert len(fake.venue_orders(f"f-{fault[:20]}")) == 1


async def test_refusals_by_the_venue_are_kept_as_rejected(fake: FakeAsterV3, tmp_path: Path):
    async with Client(build_server(live_settings(fake, tmp_path / "home"))) as client:
        preview = await call(client, "place_order", {**ORDER, "client_order_id": "margin-1"})
        fake.fail("insufficient_margin", times=1)
        text = await error_of(client, "place_order", {**ORDER, "client_order_id": "margin-1",
                                                       "confirm_token": preview["confirm_token"]})
        assert "rejected" in text
        orders = (await call(client, "get_orders", {"mode": "live"}))["orders"]
        assert [(o["client_order_id"], o["status"]) for o in orders] == [("margin-1", "rejected")]
    assert fake.venue_orders("margin-1") == []


async def test_start_up_reconciles_an_order_whose_fate_was_unknown(fake: FakeAsterV3, tmp_path: Path):
    home = tmp_path / "home"
    async with Client(build_server(live_settings(fake, home, retries=1))) as client:
        preview = await call(client, "place_order", {**ORDER, "client_order_id": "lost-1"})
        fake.fail("timeout_after_accept", times=1, delay_s=2)
        fake.fail("timeout", times=5, path="/fapi/v3/order", method="GET", delay_s=2)  # look-ups fail too
        placed = await call(client, "place_order", {**ORDER, "client_order_id": "lost-1",
                                                    "confirm_token": preview["confirm_token"]})
        assert placed["outcome"] == "unknown" and placed["order"]["status"] == "unknown"
    fake.clear_faults()
    async with Client(build_server(live_settings(fake, home))) as client:  # a restart: reconciled on first use
        orders = (await call(client, "get_orders", {"mode": "live"}))["orders"]
        assert [(o["client_order_id"], o["status"]) for o in orders] == [("lost-1", "filled")]
    assert len(fake.venue_orders("lost-1")) == 1
    with sqlite3.connect(home / "state.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM reconciliations WHERE mode = 'live'").fetchone()[0] >= 1


@pytest.mark.slow
async def test_a_canary_key_never_leaves_the_server(fake: FakeAsterV3, tmp_path: Path):
    agent = ccxt.aster().eth_get_address_from_private_key(CANARY_KEY)
    fake.register(DEMO_USER, agent)
    env = {"PATH": os.environ["PATH"], "MCP_TRADER_HOME": str(tmp_path / "home"), "MCP_TRADER_OFFLINE": "1",
           "MCP_TRADER_LIVE_TRADING": "1", "MCP_TRADER_LOG_LEVEL": "DEBUG", "MCP_TRADER_REQUEST_TIMEOUT_S": "1",
           "MCP_TRADER_BACKOFF_S": "0.05", "ASTER_USER": DEMO_USER, "ASTER_SIGNER": agent,
           "ASTER_PRIVATE_KEY": CANARY_KEY, **{f"MCP_TRADER_{k.upper()}": v for k, v in fake.urls().items()}}
    cmd = command()
    params = StdioServerParameters(command=cmd[0], args=[*cmd[1:], "serve"], env=env)
    seen: list[str] = []
    log = tmp_path / "server.log"
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            token = None
            for args in (ORDER, {**ORDER, "quantity": -1}, {**ORDER, "symbol": "NOPE"}):
                result = await client.call_tool("place_order", args)
                seen.append(json.dumps(result.model_dump(mode="json")))
                token = token or result.structured_content["confirm_token"]
            fake.fail("timeout_after_accept", times=1, delay_s=2)
            result = await client.call_tool("place_order", {**ORDER, "confirm_token": token})
            seen.append(json.dumps(result.model_dump(mode="json")))
            fake.fail("insufficient_margin", times=1)
            preview = await call(client, "place_order", {**ORDER, "client_order_id": "canary-2"})
            result = await client.call_tool("place_order", {**ORDER, "client_order_id": "canary-2",
                                                            "confirm_token": preview["confirm_token"]})
            seen.append(json.dumps(result.model_dump(mode="json")))
            for tool in ("get_pnl", "get_orders"):
                seen.append(json.dumps((await client.call_tool(tool, {"mode": "live"})).model_dump(mode="json")))
            for uri in ("trader://accounts/live/ledger", "trader://accounts/live/equity"):
                seen.append(await read_text(client, uri))
            seen.append(json.dumps([t.model_dump(mode="json") for t in (await client.list_tools()).tools]))
    seen.append(log.read_text())
    seen.append((tmp_path / "home" / "state.sqlite").read_bytes().decode("latin-1"))
    bare = CANARY_KEY.removeprefix("0x")
    for text in seen:
        assert bare not in text and bare.upper() not in text
    assert "filled" in seen[3] and "DEBUG" in seen[-2]  # the run did trade, and logged in detail
