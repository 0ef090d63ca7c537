"""The deployable inference service: `mcp-trader serve --http --inference` as a real process, with a token.

A home is prepared in this process first (two small XGBoost models on the bundled sample, the first exported to
ONNX); the service then runs on it in its own process, so sys.modules there (shown by /health) says whether the
training stack was ever imported: it must not be, before or after serving ONNX signals.
"""

import asyncio
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_calls import call, error_of
from test_server_process import command, free_port

from mcp_trader.config import Settings
from mcp_trader.server import build_server
from mcp_trader.service import JsonLines, Redacting

TOKEN = "inference-test-token-3f9a1c"
TRAIN = {"symbols": ["BTC/USDT", "ETH/USDT"], "days": 60, "as_of": "2024-09-30T23:00", "folds": 2, "device": "cpu",
         "xgboost": {"n_estimators": 5, "max_depth": 2}, "wait_seconds": 300}
INFERENCE_TOOLS = {"collect_data", "list_models", "list_exports", "get_job", "get_signals", "place_order",
                   "cancel_order", "get_orders", "get_pnl"}
TRAINING_TOOLS = {"train_model", "optimize", "run_backtest", "export_onnx", "compute_confluence",
                  "start_paper_trading"}


async def _prepare(home: Path) -> dict:
    async with Client(build_server(Settings(home=home, offline=True))) as client:
        exported = (await call(client, "train_model", TRAIN))["result"]["model_id"]
        bare = (await call(client, "train_model", {**TRAIN, "days": 50}))["result"]["model_id"]
        export_id = (await call(client, "export_onnx", {"model_id": exported, "wait_seconds": 120}))["result"]["id"]
    return {"exported": exported, "bare": bare, "export_id": export_id}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("inference") / "home"
    return {"home": home, **asyncio.run(_prepare(home))}


@pytest.fixture(scope="module")
def service(prepared: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    port, log = free_port(), tmp_path_factory.mktemp("inference-logs") / "stderr.jsonl"
    env = {**os.environ, "MCP_TRADER_HOME": str(prepared["home"]), "MCP_TRADER_OFFLINE": "1",
           "MCP_TRADER_HTTP_TOKEN": TOKEN, "MCP_TRADER_LOG_FORMAT": "json"}
    env.pop("MCP_TRADER_INFERENCE_ONLY", None)
    with log.open("w") as stderr:
        proc = subprocess.Popen([*command(), "serve", "--http", "--inference", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not answer /health"
            time.sleep(0.2)
        yield {"base": base, "log": log, **prepared}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def connect(service: dict) -> Client:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    return Client(streamable_http_client(f"{service['base']}/mcp", http_client=http))


@pytest.mark.slow
def test_everything_but_health_needs_the_token(service: dict):
    assert httpx.post(f"{service['base']}/mcp", json={}).status_code == 401
    assert httpx.post(f"{service['base']}/mcp", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
    answer = httpx.get(f"{service['base']}/health")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    health = answer.json()
    assert health["status"] == "ok" and health["inference_only"] is True and health["version"]
    assert health["database"]["ok"] is True and health["uptime_s"] >= 0
    assert health["torch_loaded"] is False and health["heavy_modules_loaded"] == []
    assert [e["export_id"] for e in health["exports"]] == [service["export_id"]]
    assert health["exports"][0]["model_id"] == service["exported"] and health["exports"][0]["validated"] is True


@pytest.mark.slow
@pytest.mark.anyio
async def test_signals_come_from_the_onnx_export_and_torch_never_loads(service: dict):
    async with connect(service) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == INFERENCE_TOOLS and not names & TRAINING_TOOLS
        answer = await call(client, "get_signals", {"model_id": service["exported"]})
        assert answer["predictor"] == f"onnx:{service['export_id']}"
        assert [s["symbol"] for s in answer["signals"]] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
        assert all(s["signal"] in ("BUY", "HOLD", "SELL") for s in answer["signals"])
        missing = await error_of(client, "get_signals", {"model_id": service["bare"]})
        assert service["bare"] in missing and "export_onnx" in missing and "ONNX exports only" in missing
        native = await error_of(client, "get_signals", {"model_id": service["exported"], "use_onnx": "never"})
        assert "use_onnx" in native and "ONNX export" in native
        listed = await call(client, "list_exports", {})
        assert listed["result"][0]["export_id"] == service["export_id"]
        order = await call(client, "place_order", {"symbol": "BTC", "side": "buy", "notional": 200})
        assert order["outcome"] == "placed" and order["order"]["mode"] == "paper"
        assert (await call(client, "get_pnl", {}))["positions"]
        train = await client.call_tool("train_model", TRAIN)
        assert train.is_error
    health = httpx.get(f"{service['base']}/health").json()
    assert health["torch_loaded"] is False and health["heavy_modules_loaded"] == []  # the process never imported it


@pytest.mark.slow
def test_logs_are_json_lines_without_the_token(service: dict):
    httpx.post(f"{service['base']}/mcp", json={}, headers={"Authorization": f"Bearer {TOKEN}x"})
    time.sleep(0.2)
    text = service["log"].read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    requests = [line for line in lines if line["logger"] == "mcp_trader.http"]
    assert any(r["path"] == "/mcp" and r["status"] == 401 and r["method"] == "POST" for r in requests)
    assert any(r["path"] == "/mcp" and r["status"] == 200 and r["duration_ms"] > 0 for r in requests)
    assert TOKEN not in text and "Bearer" not in text


def test_formatters_redact_secrets():
    record = logging.LogRecord("mcp_trader", logging.INFO, __file__, 1, "key %s sent", ("sk-secret-123",), None)
    assert "sk-secret-123" not in Redacting("%(message)s", ["sk-secret-123"]).format(record)
    line = json.loads(JsonLines(secrets=["sk-secret-123"]).format(record))
    assert line["message"] == "key [redacted] sent" and line["level"] == "INFO"


@pytest.mark.anyio
async def test_inference_server_in_process_lists_only_inference_tools(tmp_path: Path):
    settings = Settings(home=tmp_path / "home", offline=True, inference_only=True)
    async with Client(build_server(settings)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == INFERENCE_TOOLS
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert not any("studies" in t or "backtests" in t for t in templates)
