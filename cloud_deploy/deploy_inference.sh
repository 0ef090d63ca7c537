#!/usr/bin/env bash
# Build the inference image and run it as a service on this machine (or on a remote Docker host).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: cloud_deploy/deploy_inference.sh [options]

Build cloud_deploy/Dockerfile.inference and (re)start the mcp-trader inference service in a container with a
restart policy: MCP over streamable HTTP at http://<host>:<port>/mcp (bearer token), GET /health without one.

Options:
  --home DIR        state folder to mount at /data: it must hold the exported models (copy a training machine's
                    MCP_TRADER_HOME, or at least state.sqlite, models/, exports/, features/, candles/); default
                    ./mcp-trader-home
  --port PORT       port published on the host (default 8000)
  --bind ADDR       host address to publish on (default 0.0.0.0; 127.0.0.1 behind a reverse proxy)
  --name NAME       container name (default mcp-trader-inference)
  --image TAG       image tag (default mcp-trader-inference:latest)
  --remote SSH      run on a remote Docker host, e.g. ubuntu@203.0.113.7 (DOCKER_HOST=ssh://...); --home is then
                    a path on that host
  --offline         set MCP_TRADER_OFFLINE=1 (no exchange requests; signals on the stored candles only)
  --no-build        reuse the image already built
  --dry-run         print the docker commands instead of running them
  -h, --help        this help

Environment:
  MCP_TRADER_HTTP_TOKEN   required: the bearer token clients send (e.g. openssl rand -hex 32); passed to the
                          container from this environment, never written to disk or the command line
  Other MCP_TRADER_* variables (limits, MCP_TRADER_LOG_LEVEL, ...) are passed on when set.
USAGE
}

home_dir="./mcp-trader-home"
port=8000
bind="0.0.0.0"
name="mcp-trader-inference"
image="mcp-trader-inference:latest"
build=1
offline=0
dry=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --home) home_dir="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --bind) bind="$2"; shift 2 ;;
        --name) name="$2"; shift 2 ;;
        --image) image="$2"; shift 2 ;;
        --remote) export DOCKER_HOST="ssh://$2"; shift 2 ;;
        --offline) offline=1; shift ;;
        --no-build) build=0; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ -z "${MCP_TRADER_HTTP_TOKEN:-}" ]]; then
    echo "MCP_TRADER_HTTP_TOKEN is not set: the service refuses to listen outside loopback without a token" >&2
    exit 2
fi
if [[ ! "$port" =~ ^[0-9]+$ ]]; then
    echo "--port: a number, got '$port'" >&2
    exit 2
fi
run() {
    if [[ "$dry" == 1 ]]; then
        echo "+ $*"
    else
        "$@"
    fi
}
if [[ "$dry" == 0 ]] && ! command -v docker >/dev/null; then
    echo "docker is not installed" >&2
    exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${DOCKER_HOST:-}" ]]; then
    mkdir -p "$home_dir"
    home_dir="$(cd "$home_dir" && pwd)"
    if [[ ! -f "$home_dir/state.sqlite" ]]; then
        echo "warning: $home_dir has no state.sqlite: no models or exports to serve yet" >&2
    fi
fi

if [[ "$build" == 1 ]]; then
    run docker build -f "$repo/cloud_deploy/Dockerfile.inference" -t "$image" "$repo"
fi

# The container runs as uid 10001 (the image's user); the mounted home must be writable by it (paper orders,
# jobs and collected candles are written there).
if [[ -z "${DOCKER_HOST:-}" && "$(id -u)" == 0 ]]; then
    run chown -R 10001:10001 "$home_dir"
fi

env_args=(-e MCP_TRADER_HTTP_TOKEN)  # the value comes from this environment, not the command line
while IFS='=' read -r var _; do
    if [[ "$var" == MCP_TRADER_* && "$var" != MCP_TRADER_HTTP_TOKEN && "$var" != MCP_TRADER_HOME ]]; then
        env_args+=(-e "$var")
    fi
done < <(env)
if [[ "$offline" == 1 ]]; then
    env_args+=(-e MCP_TRADER_OFFLINE=1)
fi

run docker rm -f "$name" >/dev/null 2>&1 || true
run docker run -d --name "$name" --restart unless-stopped \
    -p "$bind:$port:8000" \
    -v "$home_dir:/data" \
    "${env_args[@]}" \
    --memory 2g --log-opt max-size=20m --log-opt max-file=5 \
    "$image"
if [[ "$dry" == 1 ]]; then
    exit 0
fi

echo "started $name; waiting for /health ..."
for _ in $(seq 1 60); do
    status="$(docker inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null || echo unknown)"
    if [[ "$status" == healthy ]]; then
        echo "healthy: MCP at http://<this host>:$port/mcp (Authorization: Bearer \$MCP_TRADER_HTTP_TOKEN)"
        exit 0
    fi
    if [[ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]]; then
        echo "the container stopped; its logs:" >&2
        docker logs --tail 50 "$name" >&2
        exit 1
    fi
    sleep 2
done
echo "not healthy after 120 s (status: $status); docker logs $name shows why" >&2
exit 1
