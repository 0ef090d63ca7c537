"""A fake Aster futures V3 server on 127.0.0.1 that speaks the real protocol (research/aster.md §2a, §3-§8, §12).

One real HTTP server (``ThreadingHTTPServer`` in a background thread, ephemeral port) answers

    /api/v3/exchangeInfo, /api/v3/time, /api/v3/ping           spot: lists nothing (ccxt always loads it)
    /fapi/v3/{ping,time,exchangeInfo,klines,depth,premiumIndex,ticker/price,ticker/24hr,ticker/bookTicker}
    /fapi/v3/{order,openOrder,openOrders,allOrders,allOpenOrders,userTrades,balance,account,positionRisk,
              leverage,leverageBracket,commissionRate}                                   signed (EIP-712)

so Settings(aster_url=fake.base_url, aster_spot_url=fake.base_url) points ccxt's ``aster`` class at it.

Signed requests are verified as Aster does: the signature over the exact parameter string as received is
recovered (EIP-712 ``AsterSignTransaction`` domain, ``Message(string msg)``) and must name the ``signer``
sent (else -1022); that signer must be an agent registered for ``user`` (else -2015); the µs ``nonce`` must be
within ±10 s of the server's clock and not seen before for that user (else -4225 "Nonce Expired").

The venue keeps real state per user: a cross-margin USDT wallet, leverage per symbol (20 by default), one-way
positions (signed amount, averaged entry, realised PnL and commission into the wallet), orders and trades.
MARKET orders fill at once at the mark price (taker 0.035 %); LIMIT orders rest and fill (maker 0.01 %) when
``set_price`` moves the mark across them. The exchange filters, reduce-only, client order id rules and an
initial-margin check are enforced with Aster's (Binance-lineage) error codes.

Faults are queued (``fail``) and consumed by matching requests:
    timeout_after_accept  the order is accepted and stored, then the reply is held past the client's timeout
    503_after_accept      the order is accepted, then HTTP 503 with an "execution status unknown" body
    503                   HTTP 503 with the same body; nothing is done
    429                   HTTP 429, -1003 and Retry-After; nothing is done
    timeout               the reply is held past the client's timeout; nothing is done
    nonce_expired         -4225 "Nonce Expired"; nothing is done
    insufficient_margin   the order is refused with -2019
    min_notional          the order is refused with -4164
The order kinds (the first two and the last two) only match order placements (POST /fapi/v3/order); the others
match any request, narrowed by ``path`` (a substring) and ``method``. Every request is recorded (method, path,
params without the signature, status, venue code, fault) so tests can count order submissions.
"""

import json
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import coincurve
import numpy as np

from fakes.local_http import LocalServer

# The key pair of Aster's API docs (safe to publish): the agent key, its address, and the docs' demo user.
DEMO_AGENT_KEY = "0x4fd0a42218f3eae43a6ce26d22544e986139a01e5b34a62db53757ffca81bae1"
DEMO_AGENT = "0x21cF8Ae13Bb72632562c6Fff438652Ba1a151bb0"
DEMO_USER = "0x63DD5aCC6b1aa0f563956C0e534DD30B6dcF7C4e"

HOUR_MS = 3_600_000
INTERVALS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": HOUR_MS, "4h": 4 * HOUR_MS, "1d": 24 * HOUR_MS}
KLINE_HOURS = 720  # hourly history ending at the current hour
TAKER, MAKER = Decimal("0.00035"), Decimal("0.0001")
NONCE_WINDOW_US = 10_000_000
NONCES_KEPT = 100
OPEN = ("NEW", "PARTIALLY_FILLED")
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
ORDER_FAULTS = ("timeout_after_accept", "503_after_accept", "insufficient_margin", "min_notional")
FAULT_KINDS = (*ORDER_FAULTS, "503", "429", "timeout", "nonce_expired")
UNKNOWN_STATUS = {"code": -1007, "msg": "Timeout waiting for response from backend server. "
                                        "Send status unknown; execution status unknown."}
PRIVATE = {
    ("GET", "order"), ("POST", "order"), ("DELETE", "order"), ("GET", "openOrder"), ("GET", "openOrders"),
    ("GET", "allOrders"), ("DELETE", "allOpenOrders"), ("GET", "userTrades"), ("GET", "balance"),
    ("GET", "account"), ("GET", "positionRisk"), ("POST", "leverage"), ("GET", "leverageBracket"),
    ("GET", "commissionRate"),
}


@dataclass(frozen=True)
class Spec:
    base: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    price: Decimal  # the starting mark price


SPECS = {
    "BTCUSDT": Spec("BTC", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal("1000"), Decimal("120"),
                    Decimal("60000")),
    "ETHUSDT": Spec("ETH", Decimal("0.01"), Decimal("0.001"), Decimal("0.001"), Decimal("10000"), Decimal("2000"),
                    Decimal("3000")),
}
MIN_NOTIONAL = Decimal("5")
MULTIPLIER_UP, MULTIPLIER_DOWN = Decimal("1.05"), Decimal("0.95")
MIN_PRICE = {"BTCUSDT": Decimal("0.1"), "ETHUSDT": Decimal("0.01")}
MAX_PRICE = Decimal("1000000")


class ApiError(Exception):
    """An answer in Aster's error form: HTTP status and {"code", "msg"}."""

    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status = code, msg, status


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: every matching request until cleared
    path: str | None = None
    method: str | None = None
    delay_s: float = 3.0
    retry_after: float = 1.0


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    status: int | None = None
    code: int | None = None
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Position:
    amount: Decimal = Decimal(0)  # signed: negative is short
    entry: Decimal = Decimal(0)
    update_ms: int = 0


@dataclass
class Account:
    user: str  # lower case
    wallet: Decimal
    agents: set[str]
    leverage: dict[str, int]
    positions: dict[str, Position] = field(default_factory=dict)
    nonces: deque[int] = field(default_factory=lambda: deque(maxlen=NONCES_KEPT))
    nonce_set: set[int] = field(default_factory=set)


def _s(value: Decimal | int | float) -> str:
    """Aster's decimal strings: plain notation, no exponent."""
    d = Decimal(str(value))
    return "0" if d == 0 else format(d.normalize(), "f")


def _fixed(value: Decimal, places: int = 8) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


class FakeAsterV3(LocalServer):
    """The venue's state and controls; the HTTP handler works on it under one lock."""

    def __init__(self, *, balance: float = 10_000.0, chain_id: int = 1666, leverage: int = 20):
        super().__init__()
        self.lock = threading.Lock()
        self.chain_id = chain_id
        self.default_balance = Decimal(str(balance))
        self.default_leverage = leverage
        self.marks: dict[str, Decimal] = {s: spec.price for s, spec in SPECS.items()}
        self.accounts: dict[str, Account] = {}
        self.orders: list[dict[str, Any]] = []  # every order the venue holds, in its JSON form (+ private "_user")
        self.trades: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._next_order_id = 8_000_000_001
        self._next_trade_id = 5_000_001
        self._hasher = ccxt.aster()
        self.register(DEMO_USER, DEMO_AGENT)

    # --- lifecycle ---------------------------------------------------------------------------
    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(_Handler):
            venue = fake

        return Handler

    def urls(self) -> dict[str, str]:
        """Settings fields that point the Aster futures and spot hosts at this server."""
        return {"aster_url": self.base_url, "aster_spot_url": self.base_url}

    # --- controls ----------------------------------------------------------------------------
    def register(self, user: str, agent: str, *, balance: float | None = None) -> None:
        """Make `agent` (an address) an API wallet of `user`, opening the user's account if new."""
        with self.lock:
            account = self.accounts.get(user.lower())
            if account is None:
                wallet = self.default_balance if balance is None else Decimal(str(balance))
                account = Account(user.lower(), wallet, set(), {s: self.default_leverage for s in SPECS})
                self.accounts[user.lower()] = account
            elif balance is not None:
                account.wallet = Decimal(str(balance))
            account.agents.add(agent.lower())

    def set_balance(self, user: str, amount: float) -> None:
        with self.lock:
            self.accounts[user.lower()].wallet = Decimal(str(amount))

    def wallet(self, user: str = DEMO_USER) -> float:
        with self.lock:
            return float(self.accounts[user.lower()].wallet)

    def position(self, symbol: str, user: str = DEMO_USER) -> tuple[float, float]:
        """(signed amount, entry price) of a venue symbol (BTCUSDT)."""
        with self.lock:
            pos = self.accounts[user.lower()].positions.get(symbol, Position())
            return float(pos.amount), float(pos.entry)

    def set_price(self, symbol: str, price: float) -> None:
        """Move the mark (and last) price of a venue symbol; resting limit orders it crosses fill as maker."""
        with self.lock:
            self.marks[symbol] = Decimal(str(price))
            for order in [o for o in self.orders if o["symbol"] == symbol and o["status"] in OPEN]:
                limit = Decimal(order["price"])
                crossed = self.marks[symbol] <= limit if order["side"] == "BUY" else self.marks[symbol] >= limit
                if crossed:
                    self._fill(order, limit, maker=True)

    def fail(
        self, kind: str, times: int | None = 1, *, path: str | None = None, method: str | None = None,
        delay_s: float = 3.0, retry_after: float = 1.0,
    ) -> None:
        """Answer the next `times` matching requests (all of them if None) with a fault (see the module doc)."""
        assert kind in FAULT_KINDS, kind
        with self.lock:
            self.faults.append(Fault(kind, times, path, method, delay_s, retry_after))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def recorded(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Requests so far, optionally only those of a method and with `path` in their path."""
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or path in r.path)]

    def submissions(self, client_order_id: str | None = None) -> list[Request]:
        """Order placements received (POST /fapi/v3/order), accepted or not."""
        return [r for r in self.recorded("POST", "/fapi/v3/order")
                if client_order_id is None or r.params.get("newClientOrderId") == client_order_id]

    def venue_orders(self, client_order_id: str | None = None, user: str = DEMO_USER) -> list[dict[str, Any]]:
        """The orders the venue holds (JSON form, oldest first), optionally of one client order id."""
        with self.lock:
            return [_public(o) for o in self.orders if o["_user"] == user.lower()
                    and (client_order_id is None or o["clientOrderId"] == client_order_id)]

    def reset_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # --- used by the handler -----------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining is not None and fault.remaining <= 0:
                    continue
                if fault.kind in ORDER_FAULTS and (method, path) != ("POST", "/fapi/v3/order"):
                    continue
                if fault.path is not None and fault.path not in path:
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def recover_signer(self, raw: str) -> str | None:
        """The address whose key signed `raw` (the parameter string as sent, signature last), or None."""
        if "&signature=" not in raw:
            return None
        message, signature = raw.rsplit("&signature=", 1)
        keccak = self._keccak
        domain = {"name": "AsterSignTransaction", "version": "1", "chainId": self.chain_id,
                  "verifyingContract": "0x" + "0" * 40}
        digest = keccak(self._hasher.eth_encode_structured_data(
            domain, {"Message": [{"name": "msg", "type": "string"}]}, {"msg": message}))
        try:
            sig = bytes.fromhex(signature.removeprefix("0x"))
            if len(sig) != 65:
                return None
            v = sig[64] - 27 if sig[64] >= 27 else sig[64]
            public = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([v]), digest, hasher=None)
        except ValueError:
            return None
        return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()

    def _keccak(self, data: bytes) -> bytes:
        return bytes.fromhex(self._hasher.hash(data, "keccak", "hex"))

    def authenticate(self, raw: str, params: dict[str, str]) -> Account:
        """Check a signed request's signature, agent and nonce; the user's account when all hold."""
        for name in ("nonce", "user", "signer", "signature"):
            if not params.get(name):
                raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        signer = self.recover_signer(raw)
        if signer is None or signer != params["signer"].lower():
            raise ApiError(-1022, "Signature for this request is not valid.")
        with self.lock:
            account = self.accounts.get(params["user"].lower())
            if account is None or signer not in account.agents:
                raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
            try:
                nonce = int(params["nonce"])
            except ValueError:
                raise ApiError(-1102, "Mandatory parameter 'nonce' was not sent, was empty/null, or malformed.") \
                    from None
            now_us = time.time_ns() // 1000
            stale = abs(nonce - now_us) > NONCE_WINDOW_US
            seen = nonce in account.nonce_set
            too_old = len(account.nonces) == NONCES_KEPT and nonce < min(account.nonces)
            if stale or seen or too_old:
                raise ApiError(-4225, "Nonce Expired")
            if len(account.nonces) == NONCES_KEPT:
                account.nonce_set.discard(account.nonces[0])
            account.nonces.append(nonce)
            account.nonce_set.add(nonce)
        return account

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    # --- the venue's rules (called under the lock) --------------------------------------------
    def place(self, account: Account, params: dict[str, str], forced: str | None) -> dict[str, Any]:
        """Validate and accept a new order; fill it when marketable. Answers the stored order."""
        symbol = _required(params, "symbol")
        spec = SPECS.get(symbol)
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        side, kind = _required(params, "side"), _required(params, "type")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        if kind not in ("LIMIT", "MARKET"):
            raise ApiError(-1116, "Invalid orderType.")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        reduce_only = _flag(params, "reduceOnly")
        response_type = params.get("newOrderRespType", "ACK")
        if response_type not in ("ACK", "RESULT"):
            raise ApiError(-1136, "Invalid newOrderRespType.")
        client_id = params.get("newClientOrderId") or _auto_client_id()
        if not CLIENT_ID.match(client_id):
            raise ApiError(-4015, "Client order id is not valid.")
        if any(o["_user"] == account.user and o["clientOrderId"] == client_id and o["status"] in OPEN
               for o in self.orders):
            raise ApiError(-4116, "ClientOrderId is duplicated.")
        quantity = _decimal(params, _required(params, "quantity"), "quantity")
        mark = self.marks[symbol]
        price, tif = None, None
        if kind == "LIMIT":
            price = _decimal(params, _required(params, "price"), "price")
            tif = _required(params, "timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise ApiError(-1115, "Invalid timeInForce.")
            _check_price(symbol, spec, price, side, mark)
        _check_quantity(spec, quantity, market=kind == "MARKET")
        position = account.positions.setdefault(symbol, Position())
        if reduce_only and not _reduces(position.amount, side):
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        notional = quantity * (price if price is not None else mark)
        if forced == "min_notional" or (not reduce_only and notional < MIN_NOTIONAL):
            raise ApiError(-4164, f"Order's notional must be no smaller than {MIN_NOTIONAL:.1f} "
                                  "(unless you choose reduce only).")
        if forced == "insufficient_margin" or (not reduce_only and self._short_of_margin(account, symbol, side,
                                                                                         quantity, notional)):
            raise ApiError(-2019, "Margin is insufficient.")
        return self._accept(account, symbol, side, kind, quantity, price, tif, reduce_only, client_id,
                            response_type)

    def _accept(
        self, account: Account, symbol: str, side: str, kind: str, quantity: Decimal, price: Decimal | None,
        tif: str | None, reduce_only: bool, client_id: str, response_type: str,
    ) -> dict[str, Any]:
        now = _now_ms()
        order = {
            "orderId": self._next_order_id, "symbol": symbol, "status": "NEW", "clientOrderId": client_id,
            "price": _s(price) if price is not None else "0", "avgPrice": "0.00000", "origQty": _s(quantity),
            "executedQty": "0", "cumQty": "0", "cumQuote": "0", "timeInForce": tif or "GTC", "type": kind,
            "reduceOnly": reduce_only, "closePosition": False, "side": side, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": kind,
            "time": now, "updateTime": now, "_user": account.user,
        }
        self._next_order_id += 1
        self.orders.append(order)
        acknowledged = _public(order)
        mark = self.marks[symbol]
        if kind == "MARKET":
            self._fill(order, mark, maker=False)
        elif (side == "BUY" and mark <= price) or (side == "SELL" and mark >= price):
            self._fill(order, mark, maker=False)  # a marketable limit takes at the mark
        elif tif in ("IOC", "FOK"):
            order["status"] = "EXPIRED"
        return acknowledged if response_type == "ACK" else _public(order)

    def _short_of_margin(self, account: Account, symbol: str, side: str, quantity: Decimal, notional: Decimal) -> bool:
        """Cross margin: the wallet plus unrealised PnL must cover the initial margin of positions, resting
        orders and the part of this order that opens or grows a position."""
        position = account.positions.get(symbol, Position())
        opening = quantity if not _reduces(position.amount, side) else max(Decimal(0), quantity - abs(position.amount))
        price = notional / quantity
        required = opening * price / account.leverage[symbol] * (1 + TAKER)
        return required > self._available(account)

    def _available(self, account: Account) -> Decimal:
        user = account.user
        equity, used = account.wallet, Decimal(0)
        for symbol, pos in account.positions.items():
            mark = self.marks[symbol]
            equity += pos.amount * (mark - pos.entry)
            used += abs(pos.amount) * mark / account.leverage[symbol]
        for order in self.orders:
            if order["_user"] == user and order["status"] in OPEN and not order["reduceOnly"]:
                rest = Decimal(order["origQty"]) - Decimal(order["executedQty"])
                used += rest * Decimal(order["price"]) / account.leverage[order["symbol"]]
        return equity - used

    def _fill(self, order: dict[str, Any], price: Decimal, *, maker: bool) -> None:
        account = self.accounts[order["_user"]]
        quantity = Decimal(order["origQty"]) - Decimal(order["executedQty"])
        position = account.positions.setdefault(order["symbol"], Position())
        if order["reduceOnly"]:
            if not _reduces(position.amount, order["side"]):
                order["status"], order["updateTime"] = "EXPIRED", _now_ms()
                return
            quantity = min(quantity, abs(position.amount))
        signed = quantity if order["side"] == "BUY" else -quantity
        realised = _apply(position, signed, price)
        position.update_ms = _now_ms()
        commission = quantity * price * (MAKER if maker else TAKER)
        account.wallet += realised - commission
        executed = Decimal(order["executedQty"]) + quantity
        cum_quote = Decimal(order["cumQuote"]) + quantity * price
        order.update({
            "executedQty": _s(executed), "cumQty": _s(executed), "cumQuote": _fixed(cum_quote, 5),
            "avgPrice": _fixed(cum_quote / executed, 5), "updateTime": _now_ms(),
            "status": "FILLED" if executed == Decimal(order["origQty"]) else "PARTIALLY_FILLED",
        })
        self.trades.append({
            "buyer": order["side"] == "BUY", "commission": _fixed(commission), "commissionAsset": "USDT",
            "id": self._next_trade_id, "maker": maker, "orderId": order["orderId"], "price": _s(price),
            "qty": _s(quantity), "quoteQty": _fixed(quantity * price), "realizedPnl": _fixed(realised),
            "side": order["side"], "positionSide": "BOTH", "symbol": order["symbol"], "time": _now_ms(),
            "marginAsset": "USDT", "_user": order["_user"],
        })
        self._next_trade_id += 1

    def find_order(self, user: str, params: dict[str, str]) -> dict[str, Any]:
        symbol = _required(params, "symbol")
        if symbol not in SPECS:
            raise ApiError(-1121, "Invalid symbol.")
        matches = [o for o in self.orders if o["_user"] == user and o["symbol"] == symbol]
        if params.get("orderId"):
            matches = [o for o in matches if str(o["orderId"]) == params["orderId"]]
        elif params.get("origClientOrderId"):
            matches = [o for o in matches if o["clientOrderId"] == params["origClientOrderId"]]
        else:
            raise ApiError(-1102, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!")
        if not matches:
            raise ApiError(-2013, "Order does not exist.")
        return matches[-1]

    def position_rows(self, account: Account, symbol: str | None) -> list[dict[str, Any]]:
        rows = []
        for name in SPECS:
            if symbol is not None and name != symbol:
                continue
            pos = account.positions.get(name, Position())
            mark = self.marks[name]
            rows.append({
                "symbol": name, "positionAmt": _fixed(pos.amount, 3), "entryPrice": _s(pos.entry) if pos.amount else
                "0.0", "markPrice": _fixed(mark), "unRealizedProfit": _fixed(pos.amount * (mark - pos.entry)),
                "liquidationPrice": "0", "leverage": str(account.leverage[name]), "maxNotionalValue": "2500000",
                "marginType": "cross", "isolatedMargin": "0.00000000", "isAutoAddMargin": "false",
                "positionSide": "BOTH", "notional": _fixed(pos.amount * mark), "isolatedWallet": "0",
                "updateTime": pos.update_ms,
            })
        return rows

    def balance_rows(self, account: Account) -> list[dict[str, Any]]:
        unrealised = sum((p.amount * (self.marks[s] - p.entry) for s, p in account.positions.items()), Decimal(0))
        available = max(Decimal(0), self._available(account))
        return [{
            "accountAlias": "FzXquXsRFzXqAufW", "asset": "USDT", "balance": _fixed(account.wallet),
            "crossWalletBalance": _fixed(account.wallet), "crossUnPnl": _fixed(unrealised),
            "availableBalance": _fixed(available), "maxWithdrawAmount": _fixed(available),
            "marginAvailable": True, "updateTime": _now_ms(),
        }]


def _apply(position: Position, signed: Decimal, price: Decimal) -> Decimal:
    """Add a signed fill to a one-way position; answers the PnL realised by the part that reduces it."""
    amount = position.amount
    if amount == 0 or (amount > 0) == (signed > 0):
        total = amount + signed
        position.entry = (abs(amount) * position.entry + abs(signed) * price) / abs(total)
        position.amount = total
        return Decimal(0)
    closing = min(abs(amount), abs(signed))
    realised = closing * (price - position.entry) * (1 if amount > 0 else -1)
    total = amount + signed
    if total == 0:
        position.entry = Decimal(0)
    elif (total > 0) != (amount > 0):
        position.entry = price  # flipped: the remainder opens at the fill price
    position.amount = total
    return realised


def _reduces(amount: Decimal, side: str) -> bool:
    return (amount > 0 and side == "SELL") or (amount < 0 and side == "BUY")


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _flag(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return value == "true"


def _decimal(params: dict[str, str], text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.") from None
    if not value.is_finite():
        raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return value


def _check_price(symbol: str, spec: Spec, price: Decimal, side: str, mark: Decimal) -> None:
    if price <= 0:
        raise ApiError(-4001, "Price less than 0.")
    if price < MIN_PRICE[symbol]:
        raise ApiError(-4013, "Price less than min price.")
    if price > MAX_PRICE:
        raise ApiError(-4002, "Price greater than max price.")
    if (price - MIN_PRICE[symbol]) % spec.tick != 0:
        raise ApiError(-4014, "Price not increased by tick size.")
    if side == "BUY" and price > mark * MULTIPLIER_UP:
        raise ApiError(-4016, f"Limit price can't be higher than {_s((mark * MULTIPLIER_UP).quantize(spec.tick))}.")
    if side == "SELL" and price < mark * MULTIPLIER_DOWN:
        raise ApiError(-4024, f"Limit price can't be lower than {_s((mark * MULTIPLIER_DOWN).quantize(spec.tick))}.")


def _check_quantity(spec: Spec, quantity: Decimal, market: bool) -> None:
    if quantity <= 0:
        raise ApiError(-4003, "Quantity less than or equal to zero.")
    if quantity < spec.min_qty:
        raise ApiError(-4004, "Quantity less than min quantity.")
    if quantity > (spec.market_max_qty if market else spec.max_qty):
        raise ApiError(-4005, "Quantity greater than max quantity.")
    if (quantity - spec.min_qty) % spec.step != 0:
        raise ApiError(-4023, "Quantity not increased by step size.")


def _auto_client_id() -> str:
    return secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")[:22]


def _public(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _klines(symbol: str, mark: Decimal, now_ms: int) -> np.ndarray:
    """Rows [open_ms, open, high, low, close, volume] of hourly bars ending with the current hour, whose last
    close is the mark. The walk is seeded per symbol and counted back from the current bar."""
    seed = sum(symbol.encode())
    returns = np.random.default_rng([seed, 0]).normal(0.0, 0.004, KLINE_HOURS)
    wick = np.abs(np.random.default_rng([seed, 1]).normal(0.0, 0.0015, (KLINE_HOURS, 2)))
    volume = np.random.default_rng([seed, 2]).uniform(50.0, 500.0, KLINE_HOURS)
    # close[-1] is the mark; earlier closes undo the returns backwards
    log_close = math.log(float(mark)) - np.concatenate([np.cumsum(returns[::-1])[::-1][1:], [0.0]])
    close = np.exp(log_close)
    open_ = np.concatenate([[close[0] * math.exp(-returns[0])], close[:-1]])
    high = np.maximum(open_, close) * (1 + wick[:, 0])
    low = np.minimum(open_, close) * (1 - wick[:, 1])
    current = now_ms // HOUR_MS * HOUR_MS
    ms = current - np.arange(KLINE_HOURS - 1, -1, -1, dtype=np.int64) * HOUR_MS
    return np.column_stack([ms, open_, high, low, close, volume])


def _resample(table: np.ndarray, step: int) -> np.ndarray:
    if step == HOUR_MS:
        return table
    if step < HOUR_MS:  # finer bars: repeat each hour's bar (enough for a fake)
        return table
    keys = table[:, 0] // step * step
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(table)]
    return np.array([
        [keys[s], table[s, 1], table[s:e, 2].max(), table[s:e, 3].min(), table[e - 1, 4], table[s:e, 5].sum()]
        for s, e in zip(starts, ends, strict=True)
    ])


def _num(value: float, places: int = 2) -> str:
    return f"{value:.{places}f}"


class _Handler(BaseHTTPRequestHandler):
    venue: FakeAsterV3
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        raw = split.query if method == "GET" else (body or split.query)
        params = dict(parse_qsl(raw, keep_blank_values=True))
        record = Request(method, split.path, {k: v for k, v in params.items() if k != "signature"})
        self.venue.record(record)
        fault = self.venue.take_fault(method, split.path)
        if fault is not None:
            record.fault = fault.kind
            if self._early_fault(record, fault):
                return
        try:
            status, answer = self._route(method, split.path, raw, params, fault)
        except ApiError as error:
            status, answer = error.status, {"code": error.code, "msg": error.msg}
            record.code = error.code
        if fault is not None and fault.kind == "timeout_after_accept":
            self._hold(fault)
            return
        if fault is not None and fault.kind == "503_after_accept":
            record.code = UNKNOWN_STATUS["code"]
            return self._send(record, 503, UNKNOWN_STATUS)
        self._send(record, status, answer)

    def _early_fault(self, record: Request, fault: Fault) -> bool:
        """Faults that answer without doing anything; True when the request is answered (or dropped)."""
        if fault.kind == "timeout":
            self._hold(fault)
            return True
        if fault.kind == "503":
            record.code = UNKNOWN_STATUS["code"]
            self._send(record, 503, UNKNOWN_STATUS)
            return True
        if fault.kind == "429":
            record.code = -1003
            body = {"code": -1003, "msg": "Too many requests; current limit is 2400 requests per minute."}
            self._send(record, 429, body, {"Retry-After": f"{fault.retry_after:g}"})
            return True
        if fault.kind == "nonce_expired":
            record.code = -4225
            self._send(record, 400, {"code": -4225, "msg": "Nonce Expired"})
            return True
        return False

    def _hold(self, fault: Fault) -> None:
        """Keep the client waiting past its timeout, then drop the connection without an answer."""
        self.venue.stopping.wait(fault.delay_s)
        self.close_connection = True

    # --- routes ------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, raw: str, params: dict[str, str], fault: Fault | None
    ) -> tuple[int, Any]:
        now = _now_ms()
        if path.startswith("/api/v3/"):
            return self._spot(path.removeprefix("/api/v3/"), now)
        if not path.startswith("/fapi/v3/"):
            raise ApiError(-1000, f"No such endpoint {path}.", 404)
        endpoint = path.removeprefix("/fapi/v3/")
        if (method, endpoint) in PRIVATE:
            account = self.venue.authenticate(raw, params)
            forced = fault.kind if fault is not None and fault.kind in ("insufficient_margin", "min_notional") \
                else None
            return 200, self._private(method, endpoint, account, params, forced)
        if method != "GET":
            raise ApiError(-1000, f"No such endpoint {method} {path}.", 404)
        return 200, self._public(endpoint, params, now)

    def _spot(self, endpoint: str, now: int) -> tuple[int, Any]:
        if endpoint == "exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [],
                         "assets": [], "symbols": []}
        if endpoint == "time":
            return 200, {"serverTime": now}
        if endpoint == "ping":
            return 200, {}
        raise ApiError(-1000, f"No such endpoint /api/v3/{endpoint}.", 404)

    def _public(self, endpoint: str, params: dict[str, str], now: int) -> Any:
        venue = self.venue
        if endpoint == "ping":
            return {}
        if endpoint == "time":
            return {"serverTime": now}
        if endpoint == "exchangeInfo":
            return _exchange_info(now)
        symbol = params.get("symbol")
        if symbol is not None and symbol not in SPECS:
            raise ApiError(-1121, "Invalid symbol.")
        with venue.lock:
            marks = dict(venue.marks)
        if endpoint == "klines":
            return self._klines(params, marks, now)
        if endpoint == "premiumIndex":
            rows = [_premium(s, m, now) for s, m in marks.items() if symbol in (None, s)]
            return rows[0] if symbol else rows
        if endpoint == "ticker/price":
            rows = [{"symbol": s, "price": _s(m), "time": now} for s, m in marks.items() if symbol in (None, s)]
            return rows[0] if symbol else rows
        if endpoint == "ticker/24hr":
            rows = [_ticker_24h(s, m, now) for s, m in marks.items() if symbol in (None, s)]
            return rows[0] if symbol else rows
        if endpoint == "ticker/bookTicker":
            rows = [_book_ticker(s, m, now) for s, m in marks.items() if symbol in (None, s)]
            return rows[0] if symbol else rows
        if endpoint == "depth":
            return _depth(_required(params, "symbol"), marks, int(params.get("limit", 20)), now)
        raise ApiError(-1000, f"No such endpoint /fapi/v3/{endpoint}.", 404)

    def _klines(self, params: dict[str, str], marks: dict[str, Decimal], now: int) -> list[list[Any]]:
        symbol = _required(params, "symbol")
        step = INTERVALS.get(params.get("interval", ""))
        if step is None:
            raise ApiError(-1120, "Invalid interval.")
        limit = int(params.get("limit", 500))
        if not 1 <= limit <= 1500:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        table = _resample(_klines(symbol, marks[symbol], now), step)
        keep = np.ones(len(table), dtype=bool)
        if "startTime" in params:
            keep &= table[:, 0] >= int(params["startTime"])
        if "endTime" in params:
            keep &= table[:, 0] <= int(params["endTime"])
        rows = table[keep][:limit] if "startTime" in params else table[keep][-limit:]
        return [
            [int(r[0]), _num(r[1]), _num(r[2]), _num(r[3]), _num(r[4]), _num(r[5], 3), int(r[0]) + step - 1,
             _num(r[5] * r[4], 4), 1000, _num(r[5] / 2, 3), _num(r[5] * r[4] / 2, 4), "0"]
            for r in rows
        ]

    def _private(
        self, method: str, endpoint: str, account: Account, params: dict[str, str], forced: str | None
    ) -> Any:
        venue = self.venue
        with venue.lock:
            user = account.user
            if (method, endpoint) == ("POST", "order"):
                return venue.place(account, params, forced)
            if (method, endpoint) in (("GET", "order"), ("GET", "openOrder")):
                order = venue.find_order(user, params)
                if endpoint == "openOrder" and order["status"] not in OPEN:
                    raise ApiError(-2013, "Order does not exist.")
                return _public(order)
            if (method, endpoint) == ("DELETE", "order"):
                return self._cancel(user, params)
            if endpoint == "openOrders":
                return [_public(o) for o in venue.orders if o["_user"] == user and o["status"] in OPEN
                        and params.get("symbol") in (None, o["symbol"])]
            if endpoint == "allOrders":
                return self._all_orders(user, params)
            if endpoint == "allOpenOrders":
                for order in venue.orders:
                    if order["_user"] == user and order["symbol"] == params.get("symbol") and order["status"] in OPEN:
                        order["status"], order["updateTime"] = "CANCELED", _now_ms()
                return {"code": 200, "msg": "The operation of cancel all open order is done."}
            if endpoint == "userTrades":
                return self._user_trades(user, params)
            if endpoint == "balance":
                return venue.balance_rows(account)
            if endpoint == "account":
                return {"assets": venue.balance_rows(account), "positions": venue.position_rows(account, None)}
            if endpoint == "positionRisk":
                return venue.position_rows(account, params.get("symbol"))
            if endpoint == "leverage":
                return self._leverage(account, params)
            if endpoint == "leverageBracket":
                return [_brackets(s) for s in SPECS if params.get("symbol") in (None, s)]
            if endpoint == "commissionRate":
                return {"symbol": _required(params, "symbol"), "makerCommissionRate": "0.000100",
                        "takerCommissionRate": "0.000350"}
        raise ApiError(-1000, f"No such endpoint {method} /fapi/v3/{endpoint}.", 404)

    def _cancel(self, user: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            order = self.venue.find_order(user, params)
        except ApiError as error:
            if error.code == -2013:
                raise ApiError(-2011, "Unknown order sent.") from None
            raise
        if order["status"] not in OPEN:
            raise ApiError(-2011, "Unknown order sent.")
        order["status"], order["updateTime"] = "CANCELED", _now_ms()
        return _public(order)

    def _all_orders(self, user: str, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = _required(params, "symbol")
        rows = [o for o in self.venue.orders if o["_user"] == user and o["symbol"] == symbol]
        if params.get("orderId"):
            rows = [o for o in rows if o["orderId"] >= int(params["orderId"])]
        if params.get("startTime"):
            rows = [o for o in rows if o["time"] >= int(params["startTime"])]
        if params.get("endTime"):
            rows = [o for o in rows if o["time"] <= int(params["endTime"])]
        return [_public(o) for o in rows[: int(params.get("limit", 500))]]

    def _user_trades(self, user: str, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = _required(params, "symbol")
        rows = [t for t in self.venue.trades if t["_user"] == user and t["symbol"] == symbol]
        if params.get("orderId"):
            rows = [t for t in rows if str(t["orderId"]) == params["orderId"]]
        if params.get("fromId"):
            rows = [t for t in rows if t["id"] >= int(params["fromId"])]
        if params.get("startTime"):
            rows = [t for t in rows if t["time"] >= int(params["startTime"])]
        if params.get("endTime"):
            rows = [t for t in rows if t["time"] <= int(params["endTime"])]
        return [_public(t) for t in rows[-int(params.get("limit", 500)):]]

    def _leverage(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        symbol = _required(params, "symbol")
        if symbol not in SPECS:
            raise ApiError(-1121, "Invalid symbol.")
        try:
            leverage = int(_required(params, "leverage"))
        except ValueError:
            raise ApiError(-4028, "Leverage is not valid.") from None
        if not 1 <= leverage <= 125:
            raise ApiError(-4028, "Leverage is not valid.")
        account.leverage[symbol] = leverage
        return {"leverage": leverage, "maxNotionalValue": "2500000", "symbol": symbol}

    # --- answers -----------------------------------------------------------------------------
    def _send(self, record: Request, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        record.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _exchange_info(now: int) -> dict[str, Any]:
    return {
        "timezone": "UTC", "serverTime": now, "exchangeFilters": [],
        "rateLimits": [
            {"interval": "MINUTE", "intervalNum": 1, "limit": 2400, "rateLimitType": "REQUEST_WEIGHT"},
            {"interval": "MINUTE", "intervalNum": 1, "limit": 1200, "rateLimitType": "ORDERS"},
        ],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": 0}],
        "symbols": [_symbol_entry(s, spec) for s, spec in SPECS.items()],
    }


def _symbol_entry(symbol: str, spec: Spec) -> dict[str, Any]:
    price_places = -spec.tick.as_tuple().exponent
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": spec.base, "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": price_places, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _s(MIN_PRICE[symbol]), "maxPrice": _s(MAX_PRICE),
             "tickSize": _s(spec.tick)},
            {"filterType": "LOT_SIZE", "minQty": _s(spec.min_qty), "maxQty": _s(spec.max_qty),
             "stepSize": _s(spec.step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": _s(spec.min_qty), "maxQty": _s(spec.market_max_qty),
             "stepSize": _s(spec.step)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 100},
            {"filterType": "MIN_NOTIONAL", "notional": _s(MIN_NOTIONAL)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
             "multiplierDecimal": 4},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                       "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "HIDDEN"], "liquidationFee": "0.010000",
        "marketTakeBound": "0.30",
    }


def _premium(symbol: str, mark: Decimal, now: int) -> dict[str, Any]:
    next_funding = (now // (8 * HOUR_MS) + 1) * 8 * HOUR_MS
    return {"symbol": symbol, "markPrice": _fixed(mark), "indexPrice": _fixed(mark),
            "estimatedSettlePrice": _fixed(mark), "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
            "nextFundingTime": next_funding, "time": now}


def _ticker_24h(symbol: str, mark: Decimal, now: int) -> dict[str, Any]:
    day = _klines(symbol, mark, now)[-24:]
    open_, last = float(day[0, 1]), float(mark)
    volume = float(day[:, 5].sum())
    return {
        "symbol": symbol, "priceChange": _num(last - open_), "priceChangePercent": _num((last / open_ - 1) * 100, 3),
        "weightedAvgPrice": _num(float(np.average(day[:, 4], weights=day[:, 5]))), "lastPrice": _s(mark),
        "lastQty": "0.010", "openPrice": _num(open_), "highPrice": _num(max(float(day[:, 2].max()), last)),
        "lowPrice": _num(min(float(day[:, 3].min()), last)), "volume": _num(volume, 3),
        "quoteVolume": _num(float((day[:, 5] * day[:, 4]).sum())), "openTime": int(day[0, 0]), "closeTime": now,
        "firstId": 1, "lastId": 24_000, "count": 24_000,
    }


def _book_ticker(symbol: str, mark: Decimal, now: int) -> dict[str, Any]:
    tick = SPECS[symbol].tick
    return {"symbol": symbol, "bidPrice": _s(mark - tick), "bidQty": "1.000", "askPrice": _s(mark + tick),
            "askQty": "1.000", "time": now}


def _depth(symbol: str, marks: dict[str, Decimal], limit: int, now: int) -> dict[str, Any]:
    mark, tick = marks[symbol], SPECS[symbol].tick
    levels = range(1, min(limit, 100) + 1)
    return {"lastUpdateId": now, "E": now, "T": now,
            "bids": [[_s(mark - i * tick), "1.000"] for i in levels],
            "asks": [[_s(mark + i * tick), "1.000"] for i in levels]}


def _brackets(symbol: str) -> dict[str, Any]:
    return {"symbol": symbol, "brackets": [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004,
         "cum": 0.0},
        {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000,
         "maintMarginRatio": 0.005, "cum": 50.0},
    ]}


@contextmanager
def running(**kwargs: Any) -> Iterator[FakeAsterV3]:
    """The fake venue, started and stopped around a block."""
    fake = FakeAsterV3(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
