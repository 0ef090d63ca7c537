"""What the HTTP service needs around the MCP app: a health endpoint, request logs, and logs as JSON lines.

Plain ASGI and the standard library only (no mcp, no starlette): the health answer reads the state database
read-only with sqlite3 (store.db) and looks at sys.modules, so probing it never loads a heavy library.
"""

import asyncio
import json
import logging
import sqlite3
import sys
import time
from datetime import UTC, datetime
from typing import Any

from mcp_trader import __version__
from mcp_trader.config import Settings

HEALTH_PATH = "/health"
HEAVY = ("torch", "xgboost", "optuna")  # the training stack: an inference service never loads them
# LogRecord attributes of a request log (`extra=`), written as fields of its JSON line.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "client")

access_log = logging.getLogger("mcp_trader.http")


def health(settings: Settings, started: float, inference_only: bool) -> tuple[int, dict[str, Any]]:
    """The service's state: 200 while the state database opens (or does not exist yet), else 503."""
    database, exports = _database(settings)
    body = {
        "status": "ok" if database["ok"] else "error",
        "version": __version__,
        "inference_only": inference_only,
        "uptime_s": round(time.monotonic() - started, 1),
        "database": database,
        "exports": exports,
        "torch_loaded": "torch" in sys.modules,
        "heavy_modules_loaded": [m for m in HEAVY if m in sys.modules],
    }
    return (200 if database["ok"] else 503), body


def _database(settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    path = settings.db_path
    if not path.exists():
        return {"ok": True, "exists": False, "note": "created on the first tool call"}, []
    from mcp_trader.store.db import exports_read_only

    try:
        rows = exports_read_only(path)
    except sqlite3.Error as error:
        return {"ok": False, "exists": True, "error": str(error)}, []
    exports = []
    for export_id, model_id, created_at, record in rows:
        if not (settings.exports_dir / export_id).is_dir():
            continue
        try:
            meta = json.loads(record)
        except ValueError:
            meta = {}
        exports.append({"export_id": export_id, "model_id": model_id, "kind": meta.get("kind"),
                        "validated": meta.get("validated"), "created_at": created_at})
    return {"ok": True, "exists": True}, exports


class Service:
    """ASGI wrapper: answers GET /health itself (no token needed, for load balancers) and logs every HTTP request
    (method, path, status, duration; never headers, so never the bearer token); the rest goes to `app`."""

    def __init__(self, app, settings: Settings, inference_only: bool):
        self.app, self.settings, self.inference_only = app, settings, inference_only
        self.started = time.monotonic()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began, status = time.perf_counter(), 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
                await self._health(scope, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            ms = round((time.perf_counter() - began) * 1000, 2)
            client = scope.get("client")
            fields = {"method": scope["method"], "path": scope["path"], "status": status, "duration_ms": ms,
                      "client": client[0] if client else None}
            level = logging.DEBUG if scope["path"] == HEALTH_PATH and status == 200 else logging.INFO
            access_log.log(level, "%s %s %d %.1f ms", scope["method"], scope["path"], status, ms, extra=fields)

    async def _health(self, scope, send):
        code, body = await asyncio.to_thread(health, self.settings, self.started, self.inference_only)
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else data})


def secrets_of(settings: Settings) -> list[str]:
    """The values no log line may show: the bearer token and the venue's credentials."""
    key = settings.aster_private_key.get_secret_value() if settings.aster_private_key else None
    values = (settings.http_token, key, settings.aster_user, settings.aster_signer, settings.coingecko_api_key)
    return [v for v in values if v and len(v) >= 6]


class Redacting(logging.Formatter):
    """A formatter whose output never holds a secret's value (it reads '[redacted]' instead)."""

    def __init__(self, fmt: str | None = None, secrets: list[str] | None = None):
        super().__init__(fmt)
        self.secrets = sorted(secrets or [], key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.render(record))

    def render(self, record: logging.LogRecord) -> str:
        return super().format(record)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


class JsonLines(Redacting):
    """One JSON object per record: time (UTC), level, logger, message, a request's fields, the exception."""

    def render(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for field in REQUEST_FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(settings: Settings) -> None:
    """Logs on stderr only (stdout belongs to the protocol on stdio), as text or JSON lines, secrets redacted.
    Called before the MCP server is built, so this handler is the root's and the SDK's own set-up leaves it."""
    handler = logging.StreamHandler(sys.stderr)
    secrets = secrets_of(settings)
    if settings.log_format == "json":
        handler.setFormatter(JsonLines(secrets=secrets))
    else:
        handler.setFormatter(Redacting("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
