"""The dashboard in a real headless Chromium: it shows what get_pnl and get_orders say, follows a new paper order
without a reload, and sends nothing but GETs. Plus its HTTP surface: GET only, panel errors as JSON, the token.

The browser is Debian's chromium driven by Playwright (no downloaded browser). `.ci/run` installs chromium and sets
MCP_TRADER_REQUIRE_BROWSER=1, so there a missing browser fails the test instead of skipping it.
"""

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp_calls import call
from test_server_process import command, free_port, wait_listening

from mcp_trader.config import Settings
from mcp_trader.dashboard.app import dashboard_app
from mcp_trader.home import Home
from mcp_trader.server import build_server

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
START, CLOCK = "2024-08-25", "2024-09-20T00:00"
UPDATE_S = 8.0  # the page polls every 2 s


def chromium() -> str:
    """Debian's chromium for Playwright, or a skip (a failure where MCP_TRADER_REQUIRE_BROWSER=1) saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (the test extra has it)"
    else:
        problem = None if found else "no chromium on PATH (apt-get install chromium; .ci/run does)"
    if problem:
        if os.environ.get("MCP_TRADER_REQUIRE_BROWSER") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    return found


@asynccontextmanager
async def serving(app) -> AsyncIterator[str]:
    """The app on an ephemeral 127.0.0.1 port, in this event loop."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def money(value: float) -> str:
    return f"{value:,.2f}"


def quantity(value: float) -> str:
    return f"{value:,.8f}".rstrip("0").rstrip(".")


async def order(client: Client, symbol: str, side: str, notional: float) -> dict:
    placed = await call(client, "place_order", {"symbol": symbol, "side": side, "notional": notional})
    assert placed["outcome"] == "placed"
    return placed["order"]


@pytest.mark.anyio
async def test_page_shows_the_account_and_follows_a_new_order(tmp_path: Path):
    executable = chromium()
    from playwright.async_api import async_playwright

    settings = Settings(home=tmp_path / "home", offline=True)
    home = Home(settings)  # one home for the MCP server and the dashboard, as `serve --http` mounts it
    async with Client(build_server(settings, home)) as client, serving(dashboard_app(home)) as url:
        await call(client, "collect_data", {"symbols": SYMBOLS, "start": START, "end": CLOCK})
        await call(client, "compute_confluence", {"symbols": SYMBOLS})
        first = [await order(client, "ETH", "buy", 1500), await order(client, "SOL", "sell", 800)]
        pnl = await call(client, "get_pnl", {})

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable, headless=True,
                                               args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = await browser.new_page()
                requests, errors = [], []
                page.on("request", lambda r: requests.append((r.method, r.url)))
                page.on("pageerror", lambda e: errors.append(str(e)))
                started = time.perf_counter()
                await page.goto(url + "/")

                # the figures get_pnl gives, and one row per order
                equity = page.locator('#account [data-field="equity"]')
                await equity.wait_for(timeout=15_000)
                assert await equity.inner_text() == money(pnl["equity"])
                assert await page.locator('#account [data-field="cash"]').inner_text() == money(pnl["cash"])
                assert await page.locator('#account [data-field="fees"]').inner_text() == money(pnl["fees"])
                for p in pnl["positions"]:
                    cell = page.locator(f'#positions tr[data-symbol="{p["symbol"]}"] [data-field="quantity"]')
                    assert await cell.inner_text() == quantity(p["quantity"])
                assert await page.locator("#positions tbody tr").count() == len(pnl["positions"]) == 2
                for o in first:
                    row = page.locator(f'#orders tr[data-order="{o["client_order_id"]}"]')
                    assert "filled" in await row.inner_text()
                loaded = time.perf_counter() - started

                # panels with nothing yet say what makes them appear; the others fill in
                await page.locator("#models .message").wait_for(timeout=15_000)
                assert "no model yet — train_model" in await page.locator("#models").inner_text()
                assert "no backtest yet — run_backtest" in await page.locator("#backtest").inner_text()
                await page.locator("#heatmap img").wait_for(timeout=30_000)
                await page.locator("#signals tr[data-symbol]").first.wait_for(timeout=30_000)
                assert "confluence rule" in await page.locator("#signals").inner_text()
                assert await page.locator("#signals tbody tr").count() == len(SYMBOLS)

                # a new order through MCP shows up without a reload
                before = await page.locator('#positions tr[data-symbol="ETH/USDT:USDT"] [data-field="quantity"]'
                                            ).inner_text()
                placed = time.perf_counter()
                third = await order(client, "ETH", "buy", 700)
                row = page.locator(f'#orders tr[data-order="{third["client_order_id"]}"]')
                await row.wait_for(timeout=UPDATE_S * 1000)
                followed = time.perf_counter() - placed
                after = await call(client, "get_pnl", {})
                eth = next(p for p in after["positions"] if p["symbol"] == "ETH/USDT:USDT")
                cell = page.locator('#positions tr[data-symbol="ETH/USDT:USDT"] [data-field="quantity"]')
                deadline = time.monotonic() + UPDATE_S
                while await cell.inner_text() != quantity(eth["quantity"]) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                assert await cell.inner_text() == quantity(eth["quantity"]) != before
                assert await page.locator("#orders tbody tr").count() == 3
                await page.wait_for_function(
                    "t => document.querySelector('#account [data-field=\"equity\"]').textContent === t",
                    arg=money(after["equity"]), timeout=UPDATE_S * 1000)
                assert await page.locator("#equity svg polyline").count() == 1  # two get_pnl snapshots and now
            finally:
                await browser.close()

    assert errors == []
    assert requests and {method for method, _ in requests} == {"GET"}, requests
    assert all(u.startswith(url) for _, u in requests)  # nothing from outside: no CDN, no fonts
    print(f"page showed the account in {loaded:.2f} s, followed the new order in {followed:.2f} s; "
          f"{len(requests)} GET requests")


@pytest.mark.anyio
async def test_endpoints_answer_json_and_only_get(tmp_path: Path):
    settings = Settings(home=tmp_path / "home", offline=True)
    home = Home(settings)
    app = dashboard_app(home, own_home=True, allowed_hosts=["127.0.0.1"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        account = (await http.get("/api/account?mode=paper")).json()
        assert account["equity"] == account["start_balance"] == settings.paper_balance
        assert (await http.get("/api/equity")).json()["snapshots"] == []  # reading the account writes no snapshot
        for path, hint in [("/api/signals", "train_model"), ("/api/models", "train_model"),
                           ("/api/heatmap", "compute_confluence"), ("/api/heatmap.png", "compute_confluence"),
                           ("/api/backtest", "run_backtest")]:
            answer = await http.get(path)
            assert answer.status_code == 404 and hint in answer.json()["hint"], (path, answer.text)
        live = await http.get("/api/account?mode=live")
        assert live.status_code == 400 and "live trading is not enabled" in live.json()["error"]
        bad = await http.get("/api/account?mode=moon")
        assert bad.status_code == 400 and "paper or live" in bad.json()["error"]
        assert (await http.get("/api/jobs")).json() == {"jobs": []}
        assert (await http.get("/api/orders?limit=0")).status_code == 400
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert (await http.request(method, "/api/orders")).status_code == 405
        page = await http.get("/")
        assert page.status_code == 200 and "<title>mcp-trader dashboard</title>" in page.text
        rebound = await http.get("/api/jobs", headers={"host": "attacker.example"})
        assert rebound.status_code == 400  # a DNS-rebinding page cannot read a loopback dashboard
    await home.close()


@pytest.mark.slow
def test_serve_http_mounts_the_dashboard_behind_the_token(tmp_path: Path):
    port, token = free_port(), "dash-t0ken"
    env = {**os.environ, "MCP_TRADER_HOME": str(tmp_path), "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_HTTP_TOKEN": token}
    proc = subprocess.Popen([*command(), "serve", "--http", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/dashboard/api/jobs").status_code == 401
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/dashboard/api/jobs", headers=auth).json() == {"jobs": []}
        page = httpx.get(f"{base}/dashboard", headers=auth, follow_redirects=True)
        assert page.status_code == 200 and str(page.url).endswith("/dashboard/") and "mcp-trader" in page.text
        assert httpx.post(f"{base}/dashboard/api/orders", headers=auth).status_code == 405
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_dashboard_command_outside_loopback_needs_a_token(tmp_path: Path):
    env = {**os.environ, "MCP_TRADER_HOME": str(tmp_path)}
    env.pop("MCP_TRADER_HTTP_TOKEN", None)
    out = subprocess.run([*command(), "dashboard", "--host", "0.0.0.0", "--port", str(free_port())], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "MCP_TRADER_HTTP_TOKEN" in out.stderr


@pytest.mark.slow
def test_dashboard_command_serves_the_page(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "MCP_TRADER_HOME": str(tmp_path), "MCP_TRADER_OFFLINE": "1"}
    env.pop("MCP_TRADER_HTTP_TOKEN", None)
    proc = subprocess.Popen([*command(), "dashboard", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        assert "mcp-trader dashboard" in httpx.get(f"http://127.0.0.1:{port}/").text
        assert httpx.get(f"http://127.0.0.1:{port}/api/account").json()["mode"] == "paper"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
