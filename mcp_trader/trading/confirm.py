"""Per-order confirmation of live orders: a preview hands out a token that expires; only the token sends the order.
Tokens are stored hashed, bound to the exact order previewed, and used once."""

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta

import aiosqlite

from mcp_trader.errors import InputError
from mcp_trader.store.db import dumps
from mcp_trader.trading.ledger import Ledger
from mcp_trader.trading.orders import Intent


async def issue(ledger: Ledger, conn: aiosqlite.Connection, intent: Intent, request: dict,
                ttl_s: float) -> tuple[str, str]:
    token = secrets.token_urlsafe(18)
    expires = (datetime.now(UTC) + timedelta(seconds=ttl_s)).isoformat(timespec="seconds")
    payload = dumps({"intent": intent.model_dump(), "request": request})
    await ledger.save_confirmation(conn, _hash(token), intent.client_order_id, payload, expires)
    return token, expires


async def redeem(ledger: Ledger, conn: aiosqlite.Connection, token: str, request: dict) -> Intent:
    """The previewed order for a token, marked used; InputError('confirm_token') when unknown, used, expired, or
    issued for a different order."""
    row = await ledger.confirmation(conn, _hash(token))
    again = "call place_order without confirm_token for a fresh preview and token"
    if row is None:
        raise InputError("confirm_token", "unknown token", f"a token from a live preview; {again}")
    if row["used_at"]:
        raise InputError("confirm_token", f"this token was already used at {row['used_at']}", again)
    if datetime.fromisoformat(row["expires_at"]) < datetime.now(UTC):
        raise InputError("confirm_token", f"this token expired at {row['expires_at']}", again)
    stored = json.loads(row["intent"])
    differs = sorted(k for k in set(stored["request"]) | set(request) if stored["request"].get(k) != request.get(k))
    if differs:
        raise InputError("confirm_token", f"this token confirms a different order ({', '.join(differs)} differ)",
                         "the same arguments as the preview, plus its confirm_token")
    await ledger.use_confirmation(conn, _hash(token))
    return Intent(**stored["intent"])


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
