"""The live broker: Aster DEX USDT perpetuals through ccxt's `aster` class (V3 API, EIP-712 agent signing).

An order is sent once, safely (README, Trading): when its answer is lost (a timeout, a dropped
connection, HTTP 503 or a status-unknown code) or rate-limited, it is looked up by its client order id before
anything is resent. Found, it is adopted; "no such order" (-2013) means it never arrived, and it is resent under
the same client order id. A refused nonce (-4225) is resent at once with a fresh one.

The agent's private key and the request signatures never show in an error text or a log line: every ccxt error
is rewritten from the venue's code and message, with URLs' query strings, signatures and the key removed, and is
raised without its ccxt cause; ccxt's own debug log (which carries request bodies) goes through the same scrubber.
"""

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import ccxt.async_support as ccxt
import numpy as np
from pydantic import SecretStr

from mcp_trader.backtest.params import ASTER_MAKER_FEE, ASTER_TAKER_FEE
from mcp_trader.config import Settings
from mcp_trader.data.retry import backoff_delay, retry_after_s, with_retries
from mcp_trader.data.timeframes import timeframe_ms
from mcp_trader.errors import InputError, Refused
from mcp_trader.features.indicators import ATR_BARS, ATR_PERIOD, atr_series
from mcp_trader.trading.ledger import LedgerOrder
from mcp_trader.trading.orders import (
    Intent,
    Mode,
    OrderRejected,
    OrderStatusUnknown,
    Quote,
    Status,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from mcp_trader.trading.rules import MarketRules, from_exchange_info

log = logging.getLogger(__name__)
T = TypeVar("T")

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
URL_QUERY = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")
SIGNATURE = re.compile(r"(signature=)[^&\s\"']+|(\"signature\"\s*:\s*\")[^\"]*|0x[0-9a-fA-F]{130}", re.IGNORECASE)
VENUE_ERROR = re.compile(r"\{[^{}]*\"code\"[^{}]*\}")

STATUSES: dict[str, Status] = {
    "NEW": "open", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled", "CANCELED": "canceled",
    "REJECTED": "rejected", "EXPIRED": "expired",
}
# What a venue code says about a request.
UNKNOWN_CODES = {"-1000", "-1001", "-1006", "-1007"}  # it may or may not have been executed
RATE_CODES = {"-1003", "-1015"}
NONCE_CODES = {"-4225", "-1021"}
NOT_FOUND_CODES = {"-2013", "-2011"}
DUPLICATE_CODES = {"-4116"}  # the client order id is already taken by an open order
# ccxt errors without a venue code that mean the request was refused before it was sent (or for good).
DEFINITIVE = (
    ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.AuthenticationError, ccxt.PermissionDenied,
    ccxt.NotSupported, ccxt.ArgumentsRequired, ccxt.AccountSuspended, ccxt.MarketClosed,
)

Kind = Literal["unknown", "rate", "nonce", "not_found", "duplicate", "refused"]
TRANSIENT: tuple[Kind, ...] = ("unknown", "rate", "nonce")


class CredentialsError(ValueError):
    """Live trading on Aster lacks (or has malformed) credentials; names the variable, never its value."""


class VenueError(Refused):
    """Aster could not be asked, or refused a request (the text is scrubbed of secrets).

    kind: unknown (no answer, or the venue could not tell), rate (rate-limited), nonce (nonce refused),
    not_found, duplicate (client order id taken by an open order) or refused (for good).
    """

    def __init__(self, text: str, kind: Kind, code: str | None = None, retry_after: float | None = None):
        super().__init__(text)
        self.text, self.kind, self.code, self.retry_after = text, kind, code, retry_after


class _Client(ccxt.aster):
    """ccxt's aster with nonces that never repeat. ccxt signs with milliseconds() * 1000 µs, so two signed
    requests in one millisecond would share a nonce and Aster would refuse the second as a replay (-4225)."""

    _nonce_ms = 0
    _pinned_ms: int | None = None

    def sign(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._nonce_ms = max(super().milliseconds(), self._nonce_ms + 1)
        self._pinned_ms = self._nonce_ms
        try:
            return super().sign(*args, **kwargs)
        finally:
            self._pinned_ms = None

    def milliseconds(self) -> int:
        return self._pinned_ms if self._pinned_ms is not None else super().milliseconds()


class _ScrubbingLogger:
    """The logger handed to ccxt: its debug lines carry request bodies (with signatures), so they are scrubbed."""

    def __init__(self, logger: logging.Logger, secret: str):
        self._logger, self._secret = logger, secret

    def isEnabledFor(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: object, **_: object) -> None:
        if self._logger.isEnabledFor(level):
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = " ".join(str(part) for part in (msg, *args))
            self._logger.log(level, "%s", scrub(text, self._secret))

    def debug(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: object) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)


def scrub(text: str, secret: str | None = None) -> str:
    """`text` without the private key, request signatures or URL query strings (which carry signatures)."""
    if secret:
        text = re.sub(re.escape(secret.removeprefix("0x")), "[redacted]", text, flags=re.IGNORECASE)
    text = URL_QUERY.sub(r"\1", text)
    return SIGNATURE.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)


class AsterBroker:
    """The Broker protocol on Aster perpetuals (see broker.py), signing as an API wallet (agent) of the user."""

    mode: Mode = "live"
    # Aster's base-tier rates, for previews; fills carry the commission the venue actually charged.
    taker_fee, maker_fee = ASTER_TAKER_FEE, ASTER_MAKER_FEE

    def __init__(self, settings: Settings, *, rate_limit_ms: float | None = None):
        """rate_limit_ms: pause between requests (None: ccxt's 333 ms, within Aster's 2400 weight a minute;
        0: no pacing)."""
        user, signer, key = _credentials(settings)
        self._settings = settings
        self._user = user
        self._key = key
        self._client = _client(settings, user, signer, key, rate_limit_ms)

    def __repr__(self) -> str:
        return f"AsterBroker(user={self._user}, url={self._settings.aster_url})"

    # --- the Broker protocol -----------------------------------------------------------------
    async def rules(self, symbol: str) -> MarketRules:
        market = await self._market(symbol)
        return from_exchange_info(market["info"])

    async def quote(self, symbol: str) -> Quote:
        market = await self._market(symbol)
        ticker = await self._retrying(lambda: self._call("fetch_ticker", market["symbol"]))
        price, stamp, source = ticker.get("last"), ticker.get("timestamp"), "aster ticker"
        if not price:
            index = await self._retrying(lambda: self._call("fapiPublicGetV3PremiumIndex", {"symbol": market["id"]}))
            price, stamp, source = float(index["markPrice"]), int(index["time"]), "aster mark price"
        return Quote(symbol=market["symbol"], price=float(price), time=_iso(stamp), source=source)

    async def market(self, symbol: str) -> tuple[Quote, float | None]:
        await self.rules(symbol)
        return await self.quote(symbol), await self.atr(symbol, self._settings.trading_timeframe)

    async def atr(self, symbol: str, timeframe: str) -> float | None:
        """atr_series of the venue's latest closed bars, in price units; None when too few."""
        market, step = await self._market(symbol), timeframe_ms(timeframe)
        rows = await self._retrying(lambda: self._call("fetch_ohlcv", market["symbol"], timeframe, None,
                                                       ATR_BARS + 1))
        now = self._client.milliseconds()
        closed = np.array([row[:5] for row in rows if row[0] + step <= now], dtype=np.float64).reshape(-1, 5)
        if len(closed) <= ATR_PERIOD:
            return None
        value = atr_series(closed[:, 2], closed[:, 3], closed[:, 4])[-1]
        return None if np.isnan(value) else float(value)

    async def submit(self, intent: Intent) -> VenueOrder:
        """Place the order (see the module doc). Raises OrderRejected when refused for good (nothing placed),
        OrderStatusUnknown when its fate cannot be told."""
        try:
            market = await self._market(intent.symbol)
        except VenueError as error:  # nothing was sent; a look-up settles it as not placed
            raise OrderStatusUnknown(f"order {intent.client_order_id}: Aster could not be asked ({error.text}); "
                                     "nothing was sent") from None
        self._check_units(market, intent)
        attempts = self._settings.retries
        for attempt in range(1, attempts + 1):
            order = await self._send(market, intent, attempt)
            if order is not None:
                return order
        raise OrderStatusUnknown(f"order {intent.client_order_id}: Aster did not take it in {attempts} attempts; "
                                 "it stays unknown until reconciled")

    async def lookup(self, intent: Intent) -> VenueOrder | None:
        market = await self._market(intent.symbol)
        return await self._retrying(lambda: self._lookup(market, intent))

    async def working(self, order: LedgerOrder) -> VenueOrder | None:
        if order.status == "pending":
            return None  # being sent right now by another call
        return await self.lookup(order.intent())

    async def cancel(self, intent: Intent) -> VenueOrder:
        """Cancel by client order id; answers the final state (filled meanwhile, already canceled). An order the
        venue never received answers status not_placed."""
        market = await self._market(intent.symbol)
        params = {"origClientOrderId": intent.client_order_id}
        try:
            canceled = await self._retrying(lambda: self._call("cancel_order", None, market["symbol"], params))
        except VenueError as error:
            if error.kind != "not_found":
                raise
            # not open (any more): answer what it became, or that it never arrived
            found = await self.lookup(intent)
            return found or VenueOrder(client_order_id=intent.client_order_id, status="not_placed",
                                       reason="Aster holds no order with this client order id")
        return await self._venue_order(market, canceled, intent.client_order_id)

    async def positions(self) -> list[VenuePosition]:
        await self._markets()
        rows = await self._retrying(lambda: self._call("fetch_positions"))
        positions = []
        for row in rows:
            amount = float(row["info"].get("positionAmt") or 0)
            if amount:
                mark = row["info"].get("markPrice")
                positions.append(VenuePosition(symbol=row["symbol"], quantity=amount,
                                               entry_price=float(row["info"]["entryPrice"]),
                                               mark_price=float(mark) if mark else None))
        return positions

    async def balance(self) -> float:
        """The futures account's USDT wallet balance (realised PnL and fees included, open PnL not)."""
        answer = await self._retrying(lambda: self._call("fetch_balance", {"type": "swap"}))
        rows = [r for r in answer.get("info") or [] if r.get("asset") == "USDT"]
        return float(rows[0]["balance"]) if rows else 0.0

    async def close(self) -> None:
        await self._client.close()

    # --- orders ------------------------------------------------------------------------------
    async def _send(self, market: dict[str, Any], intent: Intent, attempt: int) -> VenueOrder | None:
        """One send: the venue's order, or None when it surely did not land (to be sent again)."""
        try:
            placed = await self._call("create_order", *_order_args(market, intent))
        except VenueError as error:
            if error.kind == "refused":
                raise OrderRejected(error.text, error.code) from None
            if error.kind == "nonce":  # checked before anything else: nothing was placed
                log.info("order %s: nonce refused (%s); sending again with a fresh one", intent.client_order_id,
                         error.text)
                return None
            log.warning("order %s: %s; looking it up before any resend (attempt %d of %d)",
                        intent.client_order_id, error.text, attempt, self._settings.retries)
            found = await self._find_after(market, intent, error)
            if found is None:
                log.info("order %s never reached Aster; sending it again under the same client order id",
                         intent.client_order_id)
            return found
        return await self._venue_order(market, placed, intent.client_order_id)

    async def _find_after(self, market: dict[str, Any], intent: Intent, error: VenueError) -> VenueOrder | None:
        """Look an order up after its answer was lost: the order, or None when Aster never received it.
        Waits first (an order in flight may land late); raises OrderStatusUnknown when look-ups keep failing."""
        attempts, retry_after = self._settings.retries, error.retry_after
        for attempt in range(1, attempts + 1):
            await asyncio.sleep(backoff_delay(attempt, self._settings.backoff_s, retry_after))
            try:
                return await self._lookup(market, intent)
            except VenueError as failed:
                error, retry_after = failed, failed.retry_after
                if failed.kind not in TRANSIENT:
                    break
        raise OrderStatusUnknown(f"order {intent.client_order_id}: sent, but Aster's answer was lost and looking "
                                 f"it up failed ({error.text}); it stays unknown until reconciled")

    async def _lookup(self, market: dict[str, Any], intent: Intent) -> VenueOrder | None:
        params = {"clientOrderId": intent.client_order_id}
        try:
            found = await self._call("fetch_order", None, market["symbol"], params)
        except VenueError as error:
            if error.kind == "not_found":
                return None
            raise
        return await self._venue_order(market, found, intent.client_order_id)

    async def _venue_order(self, market: dict[str, Any], order: dict[str, Any], client_order_id: str) -> VenueOrder:
        info = order["info"]
        filled = float(info.get("executedQty") or 0)
        average = float(info.get("avgPrice") or 0)
        venue_id = str(info["orderId"])
        return VenueOrder(
            client_order_id=str(info.get("clientOrderId") or client_order_id),
            venue_order_id=venue_id,
            status=STATUSES.get(str(info.get("status", "")).upper(), "unknown"),
            filled_quantity=filled,
            average_price=average if filled and average else None,
            fills=await self._fills(market, venue_id, filled) if filled else [],
        )

    async def _fills(self, market: dict[str, Any], order_id: str, filled: float) -> list[VenueFill]:
        """The order's trades, with their fees. Trades may lag the order's status briefly: asked again until
        they add up. A failure leaves the fills short (logged); a later lookup completes them."""
        fills: list[VenueFill] = []
        for attempt in range(1, self._settings.retries + 1):
            try:
                trades = await self._retrying(lambda: self._call(
                    "fetch_my_trades", market["symbol"], None, None, {"orderId": order_id}))
            except VenueError as error:
                log.warning("order %s: its fills could not be read (%s)", order_id, error.text)
                return fills
            fills = [_fill(t) for t in trades if str(t.get("order")) == order_id]
            if sum(f.quantity for f in fills) >= filled * (1 - 1e-9):
                return fills
            await asyncio.sleep(backoff_delay(attempt, self._settings.backoff_s))
        log.warning("order %s: Aster shows %g filled but trades for only %g", order_id, filled,
                    sum(f.quantity for f in fills))
        return fills

    def _check_units(self, market: dict[str, Any], intent: Intent) -> None:
        """ccxt would silently truncate a quantity off the step (and round a price off the tick): refuse instead,
        so what is sent is what the ledger holds."""
        rules = from_exchange_info(market["info"])
        is_market = intent.type == "market"
        if rules.floor_quantity(intent.quantity, is_market) != intent.quantity:
            raise OrderRejected(f"quantity {intent.quantity:g} is off {rules.symbol}'s step "
                                f"{rules.step(is_market):g}")
        if intent.type == "limit":
            if intent.price is None:
                raise OrderRejected("a limit order needs a price")
            try:
                rules.check_price(intent.price)
            except InputError as error:
                raise OrderRejected(str(error)) from None

    # --- plumbing ----------------------------------------------------------------------------
    async def _market(self, symbol: str) -> dict[str, Any]:
        markets = await self._markets()
        market = markets.get(symbol)
        if market is None or not market.get("swap"):
            accepted = ", ".join(sorted(s for s, m in markets.items() if m.get("swap")))
            raise InputError("symbol", f"{symbol!r} is not a perpetual on Aster", accepted)
        return market

    async def _markets(self) -> dict[str, Any]:
        if not self._client.markets:
            await self._retrying(lambda: self._call("load_markets"))
        return self._client.markets

    async def _call(self, method: str, *args: Any) -> Any:
        """One ccxt call; its errors come out as VenueError with scrubbed text (never chained to ccxt's)."""
        try:
            return await getattr(self._client, method)(*args)
        except ccxt.BaseError as error:
            failure = self._failure(error)
        except Exception as error:  # a ccxt bug or an answer it cannot parse: what was done is not known
            failure = VenueError(f"{type(error).__name__}: {scrub(str(error), self._key)}", "unknown")
        raise failure

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry a read (or a cancel, which is safe to repeat) on transient failures."""
        return await with_retries(call, attempts=self._settings.retries, backoff_s=self._settings.backoff_s,
                                  transient=lambda e: isinstance(e, VenueError) and e.kind in TRANSIENT,
                                  retry_after=lambda e: e.retry_after if isinstance(e, VenueError) else None)

    def _failure(self, error: ccxt.BaseError) -> VenueError:
        text = scrub(str(error), self._key)
        code, message = _venue_code(text)
        text = f"{message} (Aster {code})" if code is not None and message else f"{type(error).__name__}: {text}"
        kind = _kind(error, code)
        retry_after = retry_after_s(self._client.last_response_headers) if kind == "rate" else None
        return VenueError(text, kind, code, retry_after)


def _kind(error: ccxt.BaseError, code: str | None) -> Kind:
    if code in UNKNOWN_CODES:
        return "unknown"
    if code in RATE_CODES or isinstance(error, ccxt.DDoSProtection):  # RateLimitExceeded is a DDoSProtection
        return "rate"
    if code in NONCE_CODES or isinstance(error, ccxt.InvalidNonce):
        return "nonce"
    if code in NOT_FOUND_CODES or (code is None and isinstance(error, ccxt.OrderNotFound)):
        return "not_found"
    if code in DUPLICATE_CODES:
        return "duplicate"
    if code is not None or isinstance(error, DEFINITIVE):
        return "refused"
    return "unknown"  # timeouts, dropped connections, HTTP 5xx without a code, bodies that are not JSON


def _venue_code(text: str) -> tuple[str | None, str | None]:
    """The {"code", "msg"} body ccxt puts in its error text, if any."""
    for match in VENUE_ERROR.finditer(text):
        try:
            body = json.loads(match.group(0))
        except ValueError:
            continue
        code = body.get("code")
        if code is not None and str(code) != "200":
            return str(code), str(body.get("msg") or "")
    return None, None


def _order_args(market: dict[str, Any], intent: Intent) -> tuple[Any, ...]:
    params: dict[str, str] = {"newClientOrderId": intent.client_order_id, "newOrderRespType": "RESULT"}
    if intent.reduce_only:
        params["reduceOnly"] = "true"  # the string: ccxt would send a Python bool as "True"
    price = None
    if intent.type == "limit":
        params["timeInForce"] = "GTC"
        price = intent.price
    return market["symbol"], intent.type, intent.side, intent.quantity, price, params


def _fill(trade: dict[str, Any]) -> VenueFill:
    info = trade.get("info") or {}
    commission = info.get("commission")  # signed; negative is a rebate (ccxt's fee.cost drops the sign)
    fee = float(commission) if commission is not None else float((trade.get("fee") or {}).get("cost") or 0)
    asset = info.get("commissionAsset", "USDT")
    if asset != "USDT":
        log.warning("trade %s: fee %s charged in %s, counted as USDT", trade.get("id"), commission, asset)
    maker = info.get("maker")
    liquidity = ("maker" if maker else "taker") if maker is not None else (trade.get("takerOrMaker") or "taker")
    return VenueFill(trade_id=str(trade["id"]), quantity=float(trade["amount"]), price=float(trade["price"]),
                     fee=fee, liquidity=liquidity, time=_iso(trade.get("timestamp")))


def _iso(ms: Any) -> str:
    stamp = datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else datetime.now(UTC)
    return stamp.isoformat().replace("+00:00", "Z")


def _credentials(settings: Settings) -> tuple[str, str, str]:
    """(user, signer, private key with 0x) from the settings; CredentialsError naming what is missing or bad."""
    key = _secret(settings.aster_private_key)
    values = {"ASTER_USER": settings.aster_user, "ASTER_SIGNER": settings.aster_signer, "ASTER_PRIVATE_KEY": key}
    missing = [name for name, value in values.items() if not value or not value.strip()]
    if missing:
        raise CredentialsError(
            f"live trading on Aster needs {', '.join(missing)} in the environment (ASTER_USER: the main wallet "
            "address; ASTER_SIGNER: the API wallet (agent) address; ASTER_PRIVATE_KEY: the agent's private key)")
    user, signer, key = (str(values[n]).strip() for n in ("ASTER_USER", "ASTER_SIGNER", "ASTER_PRIVATE_KEY"))
    for name, address in (("ASTER_USER", user), ("ASTER_SIGNER", signer)):
        if not ADDRESS.match(address):
            raise CredentialsError(f"{name} is not an address: expected 0x and 40 hex digits")
    if not PRIVATE_KEY.match(key):
        raise CredentialsError("ASTER_PRIVATE_KEY is not a private key: expected 64 hex digits (0x optional)")
    key = key if key.startswith("0x") else "0x" + key
    try:
        agent = ccxt.Exchange.eth_get_address_from_private_key(key)
    except ValueError:
        raise CredentialsError("ASTER_PRIVATE_KEY is not a valid secp256k1 private key") from None
    if agent.lower() != signer.lower():
        raise CredentialsError("ASTER_SIGNER is not the address of ASTER_PRIVATE_KEY: set it to the API wallet "
                               "(agent) address that the key belongs to")
    return user, signer, key


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _client(settings: Settings, user: str, signer: str, key: str, rate_limit_ms: float | None) -> _Client:
    config: dict[str, Any] = {
        "privateKey": key,
        "timeout": int(settings.request_timeout_s * 1000),
        "enableRateLimit": rate_limit_ms != 0,
        "logger": _ScrubbingLogger(logging.getLogger(f"{__name__}.ccxt"), key),
        "options": {
            "defaultType": "swap",
            "builderFee": False,  # else ccxt approves its own builder and adds a 0.1 % fee to every order
            "v3ChainId": settings.aster_chain_id,
            "maxRetriesOnFailure": 0,  # ccxt must never resend an order by itself
            # agent mode: sign with the agent key on behalf of the main wallet
            "signerAddress": signer,
            "cachedWalletAddress": user,
        },
    }
    if rate_limit_ms:
        config["rateLimit"] = rate_limit_ms
    client = _Client(config)
    client.options["privateKeyHashForCachedWalletAddress"] = client.hash(client.encode(key), "keccak", "hex")
    hosts = {"https://fapi.asterdex.com": settings.aster_url, "https://sapi.asterdex.com": settings.aster_spot_url}
    for name, url in client.urls["api"].items():
        for default, configured in hosts.items():
            if isinstance(url, str) and url.startswith(default):
                client.urls["api"][name] = configured.rstrip("/") + url[len(default):]
    return client
