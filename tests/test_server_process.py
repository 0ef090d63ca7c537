"""The installed command as clients use it: stdio (both handshakes), HTTP with a token, the demo, the wheel."""

import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def command() -> list[str]:
    script = shutil.which("mcp-trader", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, str(ROOT / "server.py")]


def stdio(home: Path) -> StdioServerParameters:
    env = {"MCP_TRADER_HOME": str(home), "MCP_TRADER_OFFLINE": "1", "PATH": os.environ["PATH"]}
    cmd = command()
    return StdioServerParameters(command=cmd[0], args=[*cmd[1:], "serve"], env=env)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_server_answers_both_handshakes(tmp_path, mode):
    async with Client(stdio(tmp_path), mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        assert "collect_data" in [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("collect_data", {"symbols": ["BTC/USDT"], "days": 2})
        assert not result.is_error and result.structured_content["datasets"][0]["rows"] == 48
        bad = await client.call_tool("collect_data", {"symbols": ["BTC/USDT"], "timeframes": ["7m"]})
        assert bad.is_error and "timeframes" in bad.content[0].text
        assert (await client.call_tool("collect_data", {"symbols": ["ETH/USDT"], "days": 1})).is_error is False


def test_python_server_py_is_the_same_command():
    out = subprocess.run([sys.executable, str(ROOT / "server.py"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("mcp-trader ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(tmp_path: Path, host: str, token: str | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "MCP_TRADER_HOME": str(tmp_path), "MCP_TRADER_OFFLINE": "1"}
    env.pop("MCP_TRADER_HTTP_TOKEN", None)
    if token:
        env["MCP_TRADER_HTTP_TOKEN"] = token
    proc = subprocess.Popen([*command(), "serve", "--http", "--host", host, "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, port


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("HTTP server did not start")


def test_binding_outside_loopback_needs_a_token(tmp_path):
    proc, _ = start_http(tmp_path, "0.0.0.0", token=None)
    assert proc.wait(timeout=30) == 2
    assert "MCP_TRADER_HTTP_TOKEN" in proc.stderr.read()
    assert proc.stdout.read() == ""


@pytest.mark.anyio
async def test_http_transport_with_a_bearer_token(tmp_path):
    proc, port = start_http(tmp_path, "127.0.0.1", token="s3cret-token")
    try:
        wait_listening(port, proc)
        url = f"http://127.0.0.1:{port}/mcp"
        assert httpx.post(url, json={}).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        client_http = httpx.AsyncClient(headers={"Authorization": "Bearer s3cret-token"})
        from mcp.client.streamable_http import streamable_http_client

        async with Client(streamable_http_client(url, http_client=client_http)) as client:
            tools = (await client.list_tools()).tools
            assert [t.name for t in tools] == [
                "collect_data", "compute_confluence", "train_model", "list_models", "run_backtest", "list_backtests",
                "export_onnx", "list_exports", "optimize", "get_job", "cancel_job", "get_signals",
                "start_paper_trading", "stop_paper_trading", "place_order", "cancel_order", "get_orders", "get_pnl",
            ]
            result = await client.call_tool("collect_data", {"symbols": ["BTC/USDT"], "days": 1})
            assert not result.is_error
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_demo_runs_offline_and_reports(tmp_path):
    env = {**os.environ, "MCP_TRADER_HOME": str(tmp_path / "unused")}
    out = subprocess.run([*command(), "demo", "--home", str(tmp_path / "demo")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "12 datasets (12 from sample)" in out.stdout
    assert "0 new bars fetched" in out.stdout and "SYNTHETIC" in out.stdout
    assert "WITH FAILURES" not in out.stdout
    assert "train_model: XGBoost" in out.stdout and "its baselines: log loss" in out.stdout
    assert "## list_models: mdl-" in out.stdout
    assert "run_backtest: mdl-xgboost-" in out.stdout and "buy and hold" in out.stdout
    assert "## list_backtests: bt-" in out.stdout
    assert "optimize: 20 trials" in out.stdout and "Deflated for" in out.stdout
    assert "export_onnx: mdl-xgboost-" in out.stdout and "passed" in out.stdout
    assert "## get_signals: mdl-xgboost-" in out.stdout and "outcome: duplicate" in out.stdout
    assert "risk limit max_order_notional" in out.stdout and "ledger balanced: True" in out.stdout


def test_wheel_ships_tools_and_resources_inside_the_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mcp_trader-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"mcp_trader", wheel.name.split("-py")[0].replace("mcp_trader-", "mcp_trader-") + ".dist-info"}
    for needed in ("mcp_trader/server.py", "mcp_trader/demo.py", "mcp_trader/tools/data.py",
                   "mcp_trader/resources/datasets.py", "mcp_trader/data/sample/BTC_USDT-1h.csv.gz"):
        assert needed in names


def test_building_the_server_loads_no_heavy_library():
    """Fast start: torch, xgboost, optuna, onnxruntime, pandas and numpy load on a tool's first call, never when the
    server starts."""
    heavy = ("torch", "xgboost", "optuna", "onnx", "onnxruntime", "sqlalchemy", "pandas", "numpy", "numba", "talib")
    code = ("import sys; from mcp_trader.server import build_server; build_server(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
