#!/usr/bin/env bash
# Check requirements-inference.txt without Docker: a fresh venv with exactly what the image installs (the
# requirements, then the package with --no-deps), asserted free of torch / xgboost / optuna, serving a home's
# ONNX exports in inference mode; /health must say torch_loaded false after a get_signals.
#   cloud_deploy/check_inference_env.sh HOME_WITH_EXPORTS [PYTHON (default python3.11)]
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,5p' "$0"
    exit 0
fi
home="$1"
python="${2:-python3.11}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

started=$SECONDS
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q -r "$repo/cloud_deploy/requirements-inference.txt"
"$work/venv/bin/pip" install -q --no-deps "$repo"
echo "venv built in $((SECONDS - started)) s, $(du -sm "$work/venv" | cut -f1) MiB"
"$work/venv/bin/python" -c "import importlib.util as u, sys; bad = [m for m in ('torch', 'xgboost', 'optuna') \
if u.find_spec(m)]; print('training stack installed:', bad); sys.exit(bool(bad))"

port=18765
MCP_TRADER_HOME="$home" MCP_TRADER_OFFLINE=1 MCP_TRADER_HTTP_TOKEN=check-token MCP_TRADER_LOG_LEVEL=WARNING \
    "$work/venv/bin/mcp-trader" serve --http --inference --port "$port" 2>"$work/stderr" &
pid=$!
"$work/venv/bin/python" - "$port" "$pid" <<'PY'
import asyncio, json, sys, time, urllib.request

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

port, pid = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
for _ in range(150):
    try:
        health = json.load(urllib.request.urlopen(f"{base}/health", timeout=2))
        break
    except OSError:
        time.sleep(0.2)
exports = health["exports"]
assert exports, "the home has no ONNX exports"


async def main():
    http = httpx.AsyncClient(headers={"Authorization": "Bearer check-token"}, timeout=300)
    async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        started = time.perf_counter()
        result = await client.call_tool("get_signals", {"model_id": exports[0]["model_id"]})
        assert not result.is_error, result.content[0].text
        answer = result.structured_content
        print(f"get_signals {answer['predictor']}: {[s['signal'] for s in answer['signals']]} in "
              f"{time.perf_counter() - started:.1f} s (first call)")


asyncio.run(main())
rss = next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))
after = json.load(urllib.request.urlopen(f"{base}/health", timeout=5))
print(f"{rss.strip()}; /health torch_loaded={after['torch_loaded']} heavy={after['heavy_modules_loaded']}")
sys.exit(after["torch_loaded"] or bool(after["heavy_modules_loaded"]))
PY
echo "inference environment OK"
