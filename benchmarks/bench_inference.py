"""The inference service's figures: resident memory and get_signals latency over HTTP, against baselines, in one run.

    python benchmarks/bench_inference.py [--calls 200] [--home DIR]

"Default models" are the two the demo (`mcp-trader demo`) trains, both exported to ONNX: its XGBoost model (8
assets, 1h, 365 days, default parameters) and its small LSTM (aster_native, 4 assets, 180 days, 1 × 32, 24-bar
sequences). They are trained and exported on the bundled sample in this process (offline, about a minute) unless
--home names a home that already holds validated exports of both.

Then `mcp-trader serve --http --inference` starts on that home with a bearer token and JSON logs at WARNING, and:

  RSS           VmRSS of the service process (from /proc/<pid>/status): idle after start, after the first
                get_signals of each model (graphs loaded, numba compiled), and after all the timed calls
  get_signals   round trips over HTTP through an MCP client, per model, p50 / p99 over --calls calls (after the
                first one, timed apart: it compiles the feature code)
  /health       the baseline round trip over the same HTTP stack: GET /health (reads the state database)

Baselines for memory in the same run: a bare MCPServer with one tool (benchmarks/bare_server.py, stdio), and the
full server (`serve --http`, not --inference) after one get_signals on the native XGBoost learner (use_onnx=never),
which imports torch and xgboost as the training stack does.
"""

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).resolve().parent
TOKEN = "bench-inference-token"
XGB = {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT", "ADA/USDT", "AVAX/USDT"],
       "kind": "xgboost", "days": 365, "horizon": 24, "as_of": "2024-09-30T23:00", "device": "cpu",
       "wait_seconds": 300}
LSTM = {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"], "kind": "lstm", "variant": "aster_native",
        "days": 180, "folds": 2, "as_of": "2024-09-30T23:00", "device": "cpu", "wait_seconds": 300,
        "lstm": {"hidden": 32, "layers": 1, "seq_len": 24, "epochs": 2, "samples_per_epoch": 2048}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def command() -> list[str]:
    script = shutil.which("mcp-trader", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "mcp_trader.server"]


async def prepare(home: Path) -> dict[str, str]:
    """The demo's two models, exported; the model ids by kind."""
    from mcp_trader.config import Settings
    from mcp_trader.server import build_server

    async with Client(build_server(Settings(home=home, offline=True))) as client:
        models = {}
        exports = (await client.call_tool("list_exports", {})).structured_content["result"]
        done = {e["kind"]: e["model_id"] for e in exports if e["validated"]}
        for args in (XGB, LSTM):
            if args["kind"] in done:
                models[args["kind"]] = done[args["kind"]]
                continue
            started = time.perf_counter()
            trained = await client.call_tool("train_model", args)
            assert not trained.is_error, trained.content[0].text
            model_id = trained.structured_content["result"]["model_id"]
            exported = await client.call_tool("export_onnx", {"model_id": model_id, "wait_seconds": 300})
            assert not exported.is_error, exported.content[0].text
            print(f"trained and exported {model_id} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            models[args["kind"]] = model_id
    return models


def start(home: Path, port: int, inference: bool) -> subprocess.Popen:
    env = {**os.environ, "MCP_TRADER_HOME": str(home), "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_HTTP_TOKEN": TOKEN,
           "MCP_TRADER_LOG_FORMAT": "json", "MCP_TRADER_LOG_LEVEL": "WARNING"}
    env.pop("MCP_TRADER_INFERENCE_ONLY", None)
    args = [*command(), "serve", "--http", "--port", str(port), *(["--inference"] if inference else [])]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("no /health")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int) -> Client:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
    return Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http))


async def timed_call(client: Client, tool: str, args: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    result = await client.call_tool(tool, args)
    ms = (time.perf_counter() - started) * 1000
    assert not result.is_error, result.content[0].text
    return ms, result.structured_content


async def measure_inference(home: Path, models: dict[str, str], calls: int) -> dict:
    port = free_port()
    proc = start(home, port, inference=True)
    out: dict = {"rss_idle": rss_mib(proc.pid)}
    try:
        async with connect(port) as client:
            for kind, model_id in models.items():
                ms, answer = await timed_call(client, "get_signals", {"model_id": model_id})
                assert answer["predictor"].startswith("onnx:"), answer["predictor"]
                out[f"first_{kind}"] = ms
            out["rss_loaded"] = rss_mib(proc.pid)
            latencies: dict[str, list[float]] = {kind: [] for kind in models}
            for _ in range(calls):  # interleaved: both models see the same machine load
                for kind, model_id in models.items():
                    latencies[kind].append((await timed_call(client, "get_signals", {"model_id": model_id}))[0])
            out["latency"] = latencies
            out["rss_after"] = rss_mib(proc.pid)
        with httpx.Client() as http:
            health = []
            for _ in range(calls):
                started = time.perf_counter()
                answer = http.get(f"http://127.0.0.1:{port}/health")
                health.append((time.perf_counter() - started) * 1000)
            out["health"] = health
            out["torch_loaded"] = answer.json()["torch_loaded"]
            out["heavy"] = answer.json()["heavy_modules_loaded"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


async def measure_full(home: Path, model_id: str) -> float:
    port = free_port()
    proc = start(home, port, inference=False)
    try:
        async with connect(port) as client:
            _, answer = await timed_call(client, "get_signals", {"model_id": model_id, "use_onnx": "never"})
            assert answer["predictor"] == "native"
        return rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bare_rss() -> float:
    proc = subprocess.Popen([sys.executable, str(HERE / "bare_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # imported and waiting on stdin once its RSS stops growing (a fixed sleep undercounts on a busy machine)
        last, deadline = -1.0, time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = rss_mib(proc.pid)
            if now == last:
                return now
            last = now
        return last
    finally:
        proc.kill()
        proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--home", help="a home with the exports (made on first use); default a temporary one")
    args = parser.parse_args()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="bench-inference-")) / "home"
    models = await prepare(home)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the server build above set INFO; one line per request
    print(f"cpus: {os.cpu_count()}; python {sys.version.split()[0]}; models: {models}")
    inf = await measure_inference(home, models, args.calls)
    full = await measure_full(home, models["xgboost"])
    bare = bare_rss()

    print("\nresident memory (VmRSS, MiB)")
    print(f"  bare MCPServer, one tool (stdio)                   {bare:7.1f}   baseline")
    print(f"  inference service, idle after start                {inf['rss_idle']:7.1f}")
    print(f"  inference service, both models loaded              {inf['rss_loaded']:7.1f}   "
          f"{inf['rss_loaded'] / bare:.1f}x bare")
    print(f"  inference service, after {2 * args.calls} get_signals            {inf['rss_after']:7.1f}")
    print(f"  full server after one native XGBoost get_signals   {full:7.1f}   "
          f"{full / inf['rss_loaded']:.1f}x the inference service")
    print(f"  torch loaded in the inference service: {inf['torch_loaded']} (training stack loaded: {inf['heavy']})")
    print(f"\nlatency over HTTP, ms ({args.calls} calls each; first calls timed apart)")
    h50, h99 = statistics.median(inf["health"]), percentile(inf["health"], 0.99)
    print(f"  GET /health                       p50 {h50:8.2f}  p99 {h99:8.2f}   baseline")
    assets = {"xgboost": len(XGB["symbols"]), "lstm": len(LSTM["symbols"])}
    for kind, values in inf["latency"].items():
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        label = f"get_signals {kind} ({assets[kind]} assets)"
        print(f"  {label:<33} p50 {p50:8.2f}  p99 {p99:8.2f}   {p50 / h50:.0f}x /health; "
              f"first call {inf['first_' + kind]:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
