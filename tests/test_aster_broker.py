"""The live Aster broker against a fake Aster V3 venue on 127.0.0.1 that checks signatures and keeps real state.

Every fault is judged on the venue's own books: exactly one order per client order id, nothing lost, nothing
sent twice, and no private key or signature in any error text or log line.
"""

import itertools
import json
import logging
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import numpy as np
import pytest
import talib
from fakes.aster_v3 import DEMO_AGENT, DEMO_AGENT_KEY, DEMO_USER, FakeAsterV3, running

from mcp_trader.config import Settings
from mcp_trader.errors import InputError
from mcp_trader.trading.aster import AsterBroker, CredentialsError, VenueError, scrub
from mcp_trader.trading.orders import Intent, OrderRejected, OrderStatusUnknown

pytestmark = pytest.mark.anyio

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
CANARY_KEY = "0x" + "c0ffee" * 10 + "c0de"  # a valid secp256k1 key, registered as an agent in the canary test
OTHER_KEY = "0x" + "11" * 32


@pytest.fixture(autouse=True)
def _quick_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """ccxt waits 250 ms on close for TLS transports to wind down; plain HTTP on 127.0.0.1 has none."""
    monkeypatch.setattr(ccxt_async.Exchange, "timeout_on_exit", 0)


@pytest.fixture
def fake() -> Iterator[FakeAsterV3]:
    with running() as venue:
        yield venue


def settings_for(fake: FakeAsterV3, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home", **fake.urls(), "request_timeout_s": 1.0, "retries": 3, "backoff_s": 0.05,
        "aster_user": DEMO_USER, "aster_signer": DEMO_AGENT, "aster_private_key": DEMO_AGENT_KEY,
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def broker(fake: FakeAsterV3, tmp_path: Path) -> AsyncIterator[AsterBroker]:
    live = AsterBroker(settings_for(fake, tmp_path), rate_limit_ms=0)
    try:
        yield live
    finally:
        await live.close()


def intent(cid: str, side: str = "buy", type: str = "market", quantity: float = 0.01, price: float | None = None,
           reduce_only: bool = False, symbol: str = BTC) -> Intent:
    return Intent(client_order_id=cid, mode="live", symbol=symbol, side=side, type=type, quantity=quantity,
                  price=price, reduce_only=reduce_only)


def address_of(key: str) -> str:
    return ccxt.aster().eth_get_address_from_private_key(key)


# --- the fake checks what Aster checks ---------------------------------------------------------------
def raw_client(fake: FakeAsterV3, key: str = DEMO_AGENT_KEY, signer: str = DEMO_AGENT) -> ccxt_async.aster:
    """Plain ccxt, agent mode, pointed at the fake (no broker in between)."""
    client = ccxt_async.aster({"privateKey": key, "timeout": 3000, "enableRateLimit": False, "options": {
        "defaultType": "swap", "builderFee": False, "signerAddress": signer, "cachedWalletAddress": DEMO_USER}})
    client.options["privateKeyHashForCachedWalletAddress"] = client.hash(client.encode(key), "keccak", "hex")
    client.urls["api"] = {name: fake.base_url + ("/fapi" if name.startswith("fapi") else "/api")
                          for name in client.urls["api"]}
    return client


def signed(fake: FakeAsterV3, method: str, endpoint: str, params: dict[str, Any],
           at_ms: int | None = None) -> urllib.request.Request:
    """A request signed by ccxt's own signer (optionally at a given clock), to send by hand."""
    signer = ccxt.aster({"privateKey": DEMO_AGENT_KEY, "options": {
        "signerAddress": DEMO_AGENT, "cachedWalletAddress": DEMO_USER, "builderFee": False}})
    signer.options["privateKeyHashForCachedWalletAddress"] = signer.hash(signer.encode(DEMO_AGENT_KEY), "keccak",
                                                                         "hex")
    if at_ms is not None:
        signer.milliseconds = lambda: at_ms
    request = signer.sign(f"v3/{endpoint}", ["fapiPrivate"], method, params)
    url = request["url"].replace("https://fapi.asterdex.com", fake.base_url)
    body = request["body"].encode() if request["body"] else None
    return urllib.request.Request(url, data=body, method=method, headers=request["headers"] or {})


def send(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def test_fake_refuses_a_bad_signature(fake: FakeAsterV3) -> None:
    forged = raw_client(fake, key=OTHER_KEY, signer=DEMO_AGENT)  # claims the demo agent, signs with another key
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await forged.fetch_balance()
    finally:
        await forged.close()
    honest = raw_client(fake)
    try:
        balance = await honest.fetch_balance()
    finally:
        await honest.close()
    assert balance["total"]["USDT"] == 10_000
    assert send(signed(fake, "GET", "balance", {}))[0] == 200
    tampered = signed(fake, "GET", "positionRisk", {"symbol": "BTCUSDT"})
    tampered.full_url = tampered.full_url.replace("BTCUSDT", "ETHUSDT")
    assert send(tampered) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})


async def test_fake_refuses_replayed_and_stale_nonces(fake: FakeAsterV3) -> None:
    once = signed(fake, "GET", "balance", {})
    assert send(once)[0] == 200
    assert send(once) == (400, {"code": -4225, "msg": "Nonce Expired"})
    stale = signed(fake, "GET", "balance", {}, at_ms=int(time.time() * 1000) - 20_000)
    assert send(stale) == (400, {"code": -4225, "msg": "Nonce Expired"})


async def test_fake_refuses_an_unregistered_agent(fake: FakeAsterV3, tmp_path: Path) -> None:
    stranger = AsterBroker(settings_for(fake, tmp_path, aster_signer=address_of(OTHER_KEY),
                                        aster_private_key=OTHER_KEY), rate_limit_ms=0)
    try:
        with pytest.raises(VenueError) as raised:
            await stranger.balance()
    finally:
        await stranger.close()
    assert raised.value.code == "-2015" and raised.value.kind == "refused"


@pytest.mark.parametrize(("params", "code"), [
    ({"type": "LIMIT", "quantity": "0.01", "price": "59000.05", "timeInForce": "GTC"}, -4014),
    ({"type": "MARKET", "quantity": "0.0015"}, -4023),
    ({"type": "MARKET", "quantity": "0.0001"}, -4004),
    ({"type": "MARKET", "quantity": "0"}, -4003),
    ({"type": "MARKET", "quantity": "121"}, -4005),
    ({"type": "MARKET", "quantity": "0.01", "newClientOrderId": "has space"}, -4015),
    ({"type": "MARKET", "quantity": "0.01", "reduceOnly": "True"}, -1130),
    ({"type": "MARKET", "quantity": "0.01", "reduceOnly": "true"}, -2022),
    ({"type": "LIMIT", "quantity": "0.01", "price": "70000", "timeInForce": "GTC"}, -4016),
    ({"type": "LIMIT", "quantity": "0.01", "price": "59000"}, -1102),
    ({"type": "MARKET", "quantity": "0.00008", "symbol": "ETHUSDT"}, -4004),
    ({"type": "MARKET", "quantity": "0.001", "symbol": "ETHUSDT"}, -4164),
    ({"type": "MARKET", "quantity": "0.01", "symbol": "DOGEUSDT"}, -1121),
])
async def test_fake_enforces_the_filters(fake: FakeAsterV3, params: dict[str, str], code: int) -> None:
    status, body = send(signed(fake, "POST", "order", {"symbol": "BTCUSDT", "side": "BUY"} | params))
    assert (status, body["code"]) == (400, code)
    assert fake.venue_orders() == []


async def test_fake_acks_a_market_order_as_new_then_shows_it_filled(fake: FakeAsterV3) -> None:
    client = raw_client(fake)
    try:
        placed = await client.create_order(BTC, "market", "buy", 0.01, None, {"newClientOrderId": "ack-1"})
        found = await client.fetch_order(None, BTC, {"clientOrderId": "ack-1"})
        again = await client.create_order(BTC, "limit", "buy", 0.01, 59000, {"newClientOrderId": "lim-1"})
        with pytest.raises(ccxt.ExchangeError, match="-4116"):
            await client.create_order(BTC, "limit", "buy", 0.01, 59000, {"newClientOrderId": "lim-1"})
        bars = await client.fetch_ohlcv(BTC, "1h", limit=300)
        same = await client.fetch_ohlcv(BTC, "1h", limit=300)
        book = await client.fetch_order_book(BTC, 5)
        trades = await client.fetch_my_trades(BTC)
    finally:
        await client.close()
    assert (placed["status"], placed["filled"]) == ("open", 0)
    assert (found["status"], found["filled"], found["average"]) == ("closed", 0.01, 60000)
    assert again["status"] == "open"
    assert len(bars) == 300 and bars == same and bars[-1][4] == 60000
    assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(bars))
    assert bars[-1][0] <= time.time() * 1000 < bars[-1][0] + 3_600_000
    assert book["bids"][0][0] < 60000 < book["asks"][0][0]
    assert [t["fee"]["cost"] for t in trades] == [pytest.approx(0.21)]


# --- the happy paths ---------------------------------------------------------------------------------
async def test_rules_and_quote_come_from_the_venue(broker: AsterBroker, fake: FakeAsterV3) -> None:
    btc, eth = await broker.rules(BTC), await broker.rules(ETH)
    assert (btc.venue_symbol, btc.tick_size, btc.step_size, btc.min_notional) == ("BTCUSDT", 0.1, 0.001, 5.0)
    assert (eth.tick_size, eth.market_max_quantity, eth.source) == (0.01, 2000.0, "aster exchangeInfo")
    assert (await broker.quote(BTC)).price == 60000
    fake.set_price("BTCUSDT", 61234.5)
    quote = await broker.quote(BTC)
    assert (quote.symbol, quote.price, quote.source) == (BTC, 61234.5, "aster ticker")
    with pytest.raises(InputError) as raised:
        await broker.rules("DOGE/USDT:USDT")
    assert raised.value.field == "symbol" and raised.value.accepted == f"{BTC}, {ETH}"


async def test_atr_comes_from_the_venues_closed_bars(broker: AsterBroker, fake: FakeAsterV3) -> None:
    client = raw_client(fake)
    try:
        bars = np.array(await client.fetch_ohlcv(BTC, "1h", limit=281))
    finally:
        await client.close()
    closed = bars[:-1]  # the last bar is still open
    assert await broker.atr(BTC, "1h") == pytest.approx(talib.ATR(closed[:, 2], closed[:, 3], closed[:, 4], 14)[-1])
    assert 0 < (await broker.atr(ETH, "4h") or 0) < 3000 * 0.1
    with pytest.raises(InputError):
        await broker.atr(BTC, "7m")


async def test_a_market_order_fills_with_its_fee(broker: AsterBroker, fake: FakeAsterV3) -> None:
    order = await broker.submit(intent("mkt-1"))
    assert (order.status, order.filled_quantity, order.average_price) == ("filled", 0.01, 60000)
    [fill] = order.fills
    assert (fill.quantity, fill.price, fill.liquidity) == (0.01, 60000, "taker")
    assert fill.fee == pytest.approx(0.01 * 60000 * 0.00035)
    assert order.venue_order_id == str(fake.venue_orders("mkt-1")[0]["orderId"])
    [sent] = fake.submissions("mkt-1")
    assert sent.params["newOrderRespType"] == "RESULT" and "reduceOnly" not in sent.params
    [position] = await broker.positions()
    assert (position.symbol, position.quantity, position.entry_price) == (BTC, 0.01, 60000)
    assert await broker.balance() == pytest.approx(10_000 - 0.21)


async def test_a_limit_order_rests_then_fills_as_maker(broker: AsterBroker, fake: FakeAsterV3) -> None:
    resting = await broker.submit(intent("lim-1", type="limit", price=59000.0))
    assert (resting.status, resting.filled_quantity, resting.fills) == ("open", 0, [])
    assert fake.submissions("lim-1")[0].params["timeInForce"] == "GTC"
    assert await broker.positions() == []
    fake.set_price("BTCUSDT", 58900)
    filled = await broker.lookup(intent("lim-1", type="limit", price=59000.0))
    assert filled is not None and (filled.status, filled.average_price) == ("filled", 59000)
    assert [(f.liquidity, round(f.fee, 6)) for f in filled.fills] == [("maker", round(0.01 * 59000 * 0.0001, 6))]
    assert await broker.lookup(intent("never-sent")) is None


async def test_cancel_answers_the_final_state(broker: AsterBroker, fake: FakeAsterV3) -> None:
    resting = intent("lim-2", type="limit", price=59000.0)
    await broker.submit(resting)
    canceled = await broker.cancel(resting)
    assert canceled.status == "canceled" and fake.venue_orders("lim-2")[0]["status"] == "CANCELED"
    assert (await broker.cancel(resting)).status == "canceled"  # asked twice: still its final state
    filled = intent("mkt-2")
    await broker.submit(filled)
    assert (await broker.cancel(filled)).status == "filled"
    assert (await broker.cancel(intent("never-sent"))).status == "not_placed"


async def test_a_short_is_closed_reduce_only_with_its_pnl(broker: AsterBroker, fake: FakeAsterV3) -> None:
    await broker.submit(intent("short-1", side="sell", quantity=0.1, symbol=ETH))
    [position] = await broker.positions()
    assert (position.symbol, position.quantity, position.entry_price) == (ETH, -0.1, 3000)
    fake.set_price("ETHUSDT", 2900)
    closed = await broker.submit(intent("close-1", side="buy", quantity=0.1, symbol=ETH, reduce_only=True))
    assert closed.status == "filled" and fake.submissions("close-1")[0].params["reduceOnly"] == "true"
    assert await broker.positions() == []
    fees = 0.1 * 3000 * 0.00035 + 0.1 * 2900 * 0.00035
    assert await broker.balance() == pytest.approx(10_000 + 0.1 * 100 - fees)


# --- refusals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fault", "order", "code", "words"), [
    (None, intent("r-1", type="limit", quantity=10, price=59000.0), "-2019", "Margin is insufficient"),
    ("insufficient_margin", intent("r-2"), "-2019", "Margin is insufficient"),
    (None, intent("r-3", quantity=0.001, symbol=ETH), "-4164", "notional must be no smaller than 5"),
    ("min_notional", intent("r-4"), "-4164", "notional must be no smaller than 5"),
    (None, intent("r-5", side="sell", reduce_only=True), "-2022", "ReduceOnly Order is rejected"),
    (None, intent("r-6", type="limit", price=70000.0), "-4016", "Limit price can't be higher"),
    (None, intent("r-7", quantity=200), "-4005", "Quantity greater than max quantity"),
])
async def test_definitive_refusals_are_rejected_once(
    broker: AsterBroker, fake: FakeAsterV3, fault: str | None, order: Intent, code: str, words: str
) -> None:
    if fault:
        fake.fail(fault)
    with pytest.raises(OrderRejected) as raised:
        await broker.submit(order)
    assert raised.value.code == code and words in raised.value.reason
    assert len(fake.submissions(order.client_order_id)) == 1
    assert fake.venue_orders() == []


async def test_units_off_the_grid_are_refused_before_sending(broker: AsterBroker, fake: FakeAsterV3) -> None:
    with pytest.raises(OrderRejected, match="step"):
        await broker.submit(intent("grid-1", quantity=0.0015))
    with pytest.raises(OrderRejected, match="tick"):
        await broker.submit(intent("grid-2", type="limit", price=59000.05))
    assert fake.submissions() == []


# --- faults: never a duplicate, never a lost order -----------------------------------------------------
@pytest.mark.parametrize("fault", ["timeout_after_accept", "503_after_accept"])
@pytest.mark.parametrize("kind", ["market", "limit"])
async def test_an_accepted_order_whose_answer_is_lost_is_adopted(
    broker: AsterBroker, fake: FakeAsterV3, fault: str, kind: str
) -> None:
    cid = f"lost-{kind}"
    fake.fail(fault, delay_s=2.0)
    order = await broker.submit(intent(cid, type=kind, price=59000.0 if kind == "limit" else None))
    [held] = fake.venue_orders(cid)
    assert len(fake.submissions(cid)) == 1  # adopted, not resent
    assert fake.recorded("GET", "/fapi/v3/order")[0].params["origClientOrderId"] == cid
    assert order.venue_order_id == str(held["orderId"])
    if kind == "market":
        assert order.status == "filled" and order.fills[0].fee == pytest.approx(0.21)
    else:
        assert order.status == "open" and order.fills == []


@pytest.mark.parametrize("fault", ["503", "429", "nonce_expired"])
async def test_an_order_the_venue_did_not_take_is_sent_again_once(
    broker: AsterBroker, fake: FakeAsterV3, fault: str
) -> None:
    fake.fail(fault, path="/fapi/v3/order", method="POST", retry_after=0.3)
    started = time.monotonic()
    order = await broker.submit(intent("again-1"))
    assert order.status == "filled" and order.fills[0].fee == pytest.approx(0.21)
    assert len(fake.venue_orders("again-1")) == 1
    first, second = fake.submissions("again-1")
    assert (first.fault, second.fault) == (fault, None)
    lookups = [r for r in fake.recorded("GET", "/fapi/v3/order") if first.at < r.at < second.at]
    if fault == "nonce_expired":
        assert lookups == [] and first.params["nonce"] != second.params["nonce"]
    else:
        assert [r.code for r in lookups] == [-2013]  # looked up before resending
    if fault == "429":
        assert time.monotonic() - started >= 0.3  # Retry-After honoured


async def test_an_order_never_taken_ends_unknown_after_bounded_attempts(
    broker: AsterBroker, fake: FakeAsterV3
) -> None:
    fake.fail("503", times=None, path="/fapi/v3/order", method="POST")
    with pytest.raises(OrderStatusUnknown):
        await broker.submit(intent("down-1"))
    assert len(fake.submissions("down-1")) == 3 and fake.venue_orders() == []


async def test_an_order_that_cannot_be_looked_up_is_not_resent(fake: FakeAsterV3, tmp_path: Path) -> None:
    live = AsterBroker(settings_for(fake, tmp_path, request_timeout_s=0.5), rate_limit_ms=0)
    fake.fail("timeout_after_accept", delay_s=1.5)
    fake.fail("timeout", times=None, path="/fapi/v3/order", method="GET", delay_s=1.5)
    try:
        with pytest.raises(OrderStatusUnknown, match="unknown until reconciled"):
            await live.submit(intent("dark-1"))
    finally:
        await live.close()
    assert len(fake.submissions("dark-1")) == 1 and len(fake.venue_orders("dark-1")) == 1
    assert len(fake.recorded("GET", "/fapi/v3/order")) == 3


async def test_sending_an_open_order_again_adopts_it(broker: AsterBroker, fake: FakeAsterV3) -> None:
    resting = intent("twice-1", type="limit", price=59000.0)
    first = await broker.submit(resting)
    second = await broker.submit(resting)
    assert second.venue_order_id == first.venue_order_id and second.status == "open"
    assert len(fake.venue_orders("twice-1")) == 1
    assert [r.code for r in fake.submissions("twice-1")] == [None, -4116]


async def test_nonces_never_repeat_within_a_millisecond(
    broker: AsterBroker, fake: FakeAsterV3, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = int(time.time() * 1000)
    monkeypatch.setattr(ccxt_async.aster, "milliseconds", staticmethod(lambda: frozen))  # ccxt's clock stands still
    for _ in range(3):
        assert await broker.balance() == 10_000
    nonces = [r.params["nonce"] for r in fake.recorded("GET", "/fapi/v3/balance")]
    assert len(set(nonces)) == 3 and all(r.code is None for r in fake.recorded())


async def test_the_chain_id_is_signed(fake: FakeAsterV3, tmp_path: Path) -> None:
    testnet = AsterBroker(settings_for(fake, tmp_path, aster_chain_id=714), rate_limit_ms=0)
    try:
        with pytest.raises(VenueError, match="Signature for this request is not valid") as raised:
            await testnet.balance()
    finally:
        await testnet.close()
    assert raised.value.code == "-1022"


# --- secrets -----------------------------------------------------------------------------------------
async def test_the_private_key_never_shows(fake: FakeAsterV3, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.register(DEMO_USER, address_of(CANARY_KEY))
    settings = settings_for(fake, tmp_path, aster_signer=address_of(CANARY_KEY), aster_private_key=CANARY_KEY,
                            request_timeout_s=0.5, retries=2)
    live = AsterBroker(settings, rate_limit_ms=0)
    errors: list[BaseException] = []
    try:
        for n, fault in enumerate(["timeout_after_accept", "503_after_accept", "429", "nonce_expired", "503"]):
            fake.fail(fault, path="/fapi/v3/order", method="POST", delay_s=1.0, retry_after=0.05)
            await live.submit(intent(f"canary-{n}"))
        for fault, order in [("min_notional", intent("canary-r1")), (None, intent("canary-r2", quantity=500))]:
            if fault:
                fake.fail(fault)
            with pytest.raises(OrderRejected) as rejected:
                await live.submit(order)
            errors.append(rejected.value)
        fake.fail("timeout", times=None, path="/fapi/v3/order", delay_s=1.0)
        with pytest.raises(OrderStatusUnknown) as unknown:
            await live.submit(intent("canary-u"))
        errors.append(unknown.value)
        fake.clear_faults()
        fake.fail("timeout", times=None, path="/fapi/v3/balance", delay_s=1.0)
        with pytest.raises(VenueError) as unavailable:
            await live.balance()
        errors.append(unavailable.value)
    finally:
        await live.close()
    assert {len(fake.venue_orders(f"canary-{n}")) for n in range(5)} == {1}
    texts = [caplog.text, repr(live), *("".join(traceback.format_exception(e)) + repr(e) for e in errors)]
    assert "fapi/v3/order" in caplog.text and "signature=[redacted]" in caplog.text  # ccxt's request log, scrubbed
    bare = CANARY_KEY.removeprefix("0x")
    for text in texts:
        assert bare not in text.lower() and "signature=0x" not in text.lower()


def test_scrub_removes_the_key_and_signatures() -> None:
    text = (f"key {CANARY_KEY.upper()[2:]} url http://h/fapi/v3/order?nonce=1&signature=0xabc "
            f"body a=1&signature=0x{'ab' * 65} json {{\"signature\": \"0x12\"}}")
    clean = scrub(text, CANARY_KEY)
    assert "C0FFEE" not in clean and "0xabc" not in clean and "ab" * 65 not in clean and "0x12" not in clean
    assert scrub('{"code":-1022,"msg":"Signature for this request is not valid."}') == \
        '{"code":-1022,"msg":"Signature for this request is not valid."}'


@pytest.mark.parametrize(("missing", "named"), [
    ({"aster_private_key": None}, "ASTER_PRIVATE_KEY"),
    ({"aster_user": None, "aster_signer": ""}, "ASTER_USER, ASTER_SIGNER"),
    ({"aster_private_key": "0x1234"}, "ASTER_PRIVATE_KEY is not a private key"),
    ({"aster_private_key": "ff" * 32}, "ASTER_PRIVATE_KEY is not a valid secp256k1 private key"),
    ({"aster_user": "wallet-123"}, "ASTER_USER is not an address"),
    ({"aster_signer": address_of(OTHER_KEY)}, "ASTER_SIGNER is not the address of ASTER_PRIVATE_KEY"),
])
def test_credentials_are_required_and_never_echoed(
    fake: FakeAsterV3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: dict[str, Any], named: str
) -> None:
    for name in ("ASTER_USER", "ASTER_SIGNER", "ASTER_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CredentialsError) as raised:
        AsterBroker(settings_for(fake, tmp_path, **missing))
    text = str(raised.value)
    assert named in text
    for secret in (DEMO_AGENT_KEY[2:], "1234", "ffff", "wallet-123", DEMO_USER, DEMO_AGENT):
        assert secret.lower() not in text.lower()


async def test_the_broker_shows_no_secret(broker: AsterBroker) -> None:
    assert DEMO_AGENT_KEY[2:] not in repr(broker) and broker.mode == "live"
