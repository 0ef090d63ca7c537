"""get_signals through an MCP client, offline, against the backtest's own decisions.

One server for the module, on the bundled hourly sample: a small XGBoost model is trained up to 2024-06-30 and
backtested on the bars after its training data; the confluence rule is backtested with no model. The backtests'
per-bar signals come from their own input builder (checked against the run's signals hash), and get_signals at
a bar must decide exactly what they decided there.
"""

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from mcp import Client
from mcp_calls import call, error_of, read_text

from mcp_trader.backtest.inputs import BacktestRequest, Inputs, build_inputs
from mcp_trader.config import Settings
from mcp_trader.home import Home
from mcp_trader.server import build_server
from mcp_trader.tools import signals as signal_tools
from mcp_trader.trading.signals import SignalRequest, decide

pytestmark = pytest.mark.anyio

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
TRAIN = {"symbols": SYMBOLS, "days": 120, "as_of": "2024-06-30T23:00", "folds": 2, "device": "cpu",
         "xgboost": {"n_estimators": 10, "max_depth": 3}, "wait_seconds": 300}
END = "2024-09-30T23:00"
MIN_CONFIDENCE = 0.4
EDGE = "implied"  # the bundled sample gives models no validated edge; the comparisons need signals to compare
CONFLUENCE = {"strategy": "confluence", "symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOT/USDT"],
              "threshold": 0.4}
SIDE = {"SELL": -1, "HOLD": 0, "BUY": 1}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("signals") / "home", offline=True)


@pytest.fixture(scope="module")
async def mcp(settings: Settings) -> AsyncIterator[Client]:
    server = build_server(settings)
    if "get_signals" not in {t.name for t in await server.list_tools()}:
        signal_tools.register(server)  # until mcp_trader.tools registers it
    async with Client(server) as connected:
        yield connected


@pytest.fixture(scope="module")
async def home(settings: Settings) -> AsyncIterator[Home]:
    """The same home, opened in-process, for the backtest's input builder and the paper loop's entry point."""
    opened = Home(settings)
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
async def model(mcp: Client) -> dict:
    return (await call(mcp, "train_model", TRAIN))["result"]


async def backtest(mcp: Client, home: Home, args: dict) -> Inputs:
    """Run a backtest through the tool, then rebuild its inputs: the signals it traded, bar by bar."""
    summary = (await call(mcp, "run_backtest", {**args, "end": END, "days": 30, "wait_seconds": 120}))["result"]
    record = json.loads(await read_text(mcp, summary["resources"]["record"]))
    inputs = await build_inputs(home, BacktestRequest.model_validate(record["request"]))
    assert inputs.signals_hash() == record["signals_hash"]  # these are the very signals the run traded
    return inputs


@pytest.fixture(scope="module")
async def model_inputs(mcp: Client, home: Home, model: dict) -> Inputs:
    return await backtest(mcp, home, {"model_id": model["model_id"], "signals": "after_training",
                                      "min_confidence": MIN_CONFIDENCE, "edge": EDGE})


@pytest.fixture(scope="module")
async def confluence_inputs(mcp: Client, home: Home) -> Inputs:
    return await backtest(mcp, home, CONFLUENCE)


@pytest.fixture(scope="module")
async def export(mcp: Client, model: dict) -> dict:
    """The model's ONNX export, and the error use_onnx='always' gave before there was one."""
    before = await error_of(mcp, "get_signals", {"model_id": model["model_id"], "use_onnx": "always"})
    answer = await call(mcp, "export_onnx", {"model_id": model["model_id"], "wait_seconds": 120})
    return {"export_id": answer["result"]["id"], "before": before}


def bars_to_check(inputs: Inputs, acting: int = 5) -> list[int]:
    """The first and last bars of the span, and some where the backtest bought or sold."""
    active = np.flatnonzero((inputs.signal != 0).any(axis=1))
    assert len(active) >= acting, "the backtest should act on some bars, or the comparison says little"
    picked = active[np.linspace(0, len(active) - 1, acting).astype(int)]
    return sorted({0, len(inputs.panel.index) - 1, *picked.tolist()})


def assert_decided_as(answer: dict, inputs: Inputs, k: int) -> None:
    assert answer["time"] == inputs.panel.index[k].isoformat()
    assert [s["symbol"] for s in answer["signals"]] == list(inputs.panel.symbols)
    for j, s in enumerate(answer["signals"]):
        assert SIDE[s["signal"]] == inputs.signal[k, j], (answer["time"], s)
        if inputs.signal[k, j] != 0:  # the cost gate's net edge ranks entries, its fraction sizes them
            assert abs(s["expected_move"]) - s["round_trip_cost"] == pytest.approx(inputs.strength[k, j], rel=1e-6)
            assert s["size_fraction"] == pytest.approx(inputs.fraction[k, j], rel=1e-6)
        assert s["close"] == inputs.panel.close[k, j]
        assert s["atr"] == pytest.approx(inputs.atr[k, j], rel=1e-9, abs=0)  # what the engine sizes with


async def test_the_tool_is_listed_with_its_contract(mcp: Client):
    tool = {t.name: t for t in (await mcp.list_tools()).tools}["get_signals"]
    props = tool.input_schema["properties"]
    assert {"model_id", "strategy", "symbols", "min_confidence", "threshold", "as_of", "use_onnx"} <= set(props)
    assert props["min_confidence"]["default"] == 0.5 and props["min_confidence"]["maximum"] == 1
    assert props["use_onnx"]["default"] == "auto"
    assert {"signals", "predictor", "synthetic", "data", "in_sample"} <= set(tool.output_schema["properties"])
    assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
    assert "run_backtest" in tool.description and "ONNX" in tool.description


async def test_a_models_signal_is_the_backtests_decision_at_that_bar(mcp: Client, model: dict,
                                                                     model_inputs: Inputs):
    args = {"model_id": model["model_id"], "min_confidence": MIN_CONFIDENCE, "use_onnx": "never", "edge": EDGE}
    for k in bars_to_check(model_inputs):
        answer = await call(mcp, "get_signals", {**args, "as_of": model_inputs.panel.index[k].isoformat()})
        assert_decided_as(answer, model_inputs, k)
        assert answer["predictor"] == "native" and answer["model_id"] == model["model_id"]
        assert answer["in_sample"] is False and answer["synthetic"] is False
        assert answer["rule"] == {"min_confidence": MIN_CONFIDENCE}
        for s in answer["signals"]:
            assert sum(s["probabilities"].values()) == pytest.approx(1.0)
            assert s["confidence"] == max(s["probabilities"].values())
    latest = await call(mcp, "get_signals", args)  # default: the latest stored bar, the backtest's last
    assert_decided_as(latest, model_inputs, len(model_inputs.panel.index) - 1)
    assert {d["dataset_id"] for d in latest["data"]} == {i.dataset_id for i in model_inputs.data}
    assert latest["bars"] < 3000 and latest["seconds"] < 5  # a window of recent bars, not the whole history


async def test_the_confluence_signal_is_the_backtests_decision_at_that_bar(mcp: Client, confluence_inputs: Inputs):
    for k in bars_to_check(confluence_inputs):
        answer = await call(mcp, "get_signals", {**CONFLUENCE, "as_of": confluence_inputs.panel.index[k].isoformat()})
        assert_decided_as(answer, confluence_inputs, k)
        assert answer["predictor"] == "rule" and answer["model_id"] is None
        assert answer["rule"] == {"threshold": 0.4}
        for s in answer["signals"]:
            assert s["confidence"] == pytest.approx(abs(s["confluence_score"]))


async def test_the_paper_loop_gets_what_the_engine_gets(home: Home, model: dict, model_inputs: Inputs):
    request = SignalRequest(model_id=model["model_id"], min_confidence=MIN_CONFIDENCE, use_onnx="never", edge=EDGE)
    for k in bars_to_check(model_inputs)[1:3]:
        at = model_inputs.panel.index[k].to_pydatetime()
        decisions = await decide(home, request, at)
        assert [d.symbol for d in decisions] == list(model_inputs.panel.symbols)
        for j, d in enumerate(decisions):
            assert d.time == at and d.signal == model_inputs.signal[k, j]
            assert d.strength == pytest.approx(model_inputs.strength[k, j], rel=1e-9, abs=0)
            assert d.close == model_inputs.panel.close[k, j]
            assert d.atr == pytest.approx(model_inputs.atr[k, j], rel=1e-9, abs=0)


async def test_a_subset_of_symbols_and_a_bar_inside_the_training_data(mcp: Client, model: dict):
    answer = await call(mcp, "get_signals", {"model_id": model["model_id"], "symbols": ["eth/usdt"],
                                             "as_of": "2024-06-15T12:30"})
    assert [s["symbol"] for s in answer["signals"]] == ["ETH/USDT:USDT"]
    assert answer["time"] == "2024-06-15T12:00:00+00:00" and answer["decided_at"] == "2024-06-15T13:00:00+00:00"
    assert answer["in_sample"] is True and any("inside its training data" in n for n in answer["notes"])
    assert len(answer["data"]) == 3  # the features still see the whole universe


async def test_the_onnx_export_decides_as_the_native_model(mcp: Client, model: dict, model_inputs: Inputs,
                                                           export: dict):
    assert "use_onnx" in export["before"] and "export_onnx" in export["before"]
    base = {"model_id": model["model_id"], "min_confidence": MIN_CONFIDENCE, "edge": EDGE}
    for k in bars_to_check(model_inputs):
        as_of = model_inputs.panel.index[k].isoformat()
        auto = await call(mcp, "get_signals", {**base, "as_of": as_of})
        native = await call(mcp, "get_signals", {**base, "as_of": as_of, "use_onnx": "never"})
        assert auto["predictor"] == f"onnx:{export['export_id']}" and native["predictor"] == "native"
        for j, (onnx_signal, native_signal) in enumerate(zip(auto["signals"], native["signals"], strict=True)):
            assert SIDE[onnx_signal["signal"]] == model_inputs.signal[k, j]
            assert onnx_signal["atr"] == native_signal["atr"]
            for name, p in native_signal["probabilities"].items():
                assert onnx_signal["probabilities"][name] == pytest.approx(p, rel=1e-3)  # the parity certificate


async def test_a_return_forecast_trades_its_sign_alike_in_backtest_signals_and_onnx(mcp: Client, home: Home):
    """target='return': the regressor's forecast reads as three-point probabilities whose P(BUY) − P(SELL) is the
    forecast; the backtest, get_signals natively and its ONNX export all trade its sign through the same gate."""
    eager = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.3}  # forecasts large enough to pass the gate
    model = (await call(mcp, "train_model", {**TRAIN, "target": "return", "xgboost": eager}))["result"]
    assert model["target"] == "return" and "R²" in model["verdict"]["summary"]
    inputs = await backtest(mcp, home, {"model_id": model["model_id"], "signals": "after_training", "edge": EDGE,
                                        "cost_margin": 0})
    assert "sign of the return forecast" in inputs.described
    export = (await call(mcp, "export_onnx", {"model_id": model["model_id"], "wait_seconds": 120}))["result"]
    assert export["parity"]["passed"] and "three-point" in export["outputs"][0]
    base = {"model_id": model["model_id"], "edge": EDGE, "cost_margin": 0}
    for k in bars_to_check(inputs):
        as_of = inputs.panel.index[k].isoformat()
        native = await call(mcp, "get_signals", {**base, "as_of": as_of, "use_onnx": "never"})
        assert_decided_as(native, inputs, k)
        onnx = await call(mcp, "get_signals", {**base, "as_of": as_of, "use_onnx": "always"})
        for j, (a, b) in enumerate(zip(onnx["signals"], native["signals"], strict=True)):
            p = b["probabilities"]
            assert p["HOLD"] == pytest.approx(1 - abs(p["BUY"] - p["SELL"])) and min(p["BUY"], p["SELL"]) == 0
            assert SIDE[a["signal"]] == inputs.signal[k, j] == (np.sign(p["BUY"] - p["SELL"]) if b["signal"] != "HOLD"
                                                                else 0)
            assert a["probabilities"]["BUY"] - a["probabilities"]["SELL"] == pytest.approx(
                p["BUY"] - p["SELL"], rel=1e-3, abs=1e-6)


@pytest.mark.slow
async def test_the_onnx_path_runs_without_torch(settings: Settings, mcp: Client, model: dict, export: dict):
    code = f"""
import asyncio, json, sys
from mcp_trader.config import Settings
from mcp_trader.home import Home
from mcp_trader.trading.signals import SignalRequest, latest_signals

async def main():
    home = Home(Settings(home={str(settings.home)!r}, offline=True))
    report = await latest_signals(home, SignalRequest(model_id={model["model_id"]!r}, use_onnx="always"))
    await home.close()
    heavy = sorted(m for m in ("torch", "xgboost") if m in sys.modules)
    print(json.dumps({{"predictor": report.predictor, "signals": [s.signal for s in report.signals],
                      "heavy": heavy}}))

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["predictor"] == f"onnx:{export['export_id']}" and seen["heavy"] == []
    here = await call(mcp, "get_signals", {"model_id": model["model_id"], "use_onnx": "always"})
    assert seen["signals"] == [s["signal"] for s in here["signals"]]


@pytest.mark.slow
def test_importing_the_tool_loads_no_heavy_library():
    heavy = ("torch", "xgboost", "optuna", "onnx", "onnxruntime", "sqlalchemy", "pandas", "numpy", "numba", "talib")
    code = f"import sys; import mcp_trader.tools.signals; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


BAD_INPUT = [
    pytest.param({"model_id": "mdl-nope"}, ["model_id", "mdl-nope", "list_models"], id="unknown-model"),
    pytest.param({"symbols": ["XRP/USDT"]}, ["symbols[0]", "not trained on XRP/USDT:USDT"], id="untraded-symbol"),
    pytest.param({"min_confidence": 1.5}, ["min_confidence", "less than or equal to 1"], id="min-confidence-range"),
    pytest.param({"min_confidnce": 0.6}, ["min_confidnce", "not an argument", "min_confidence"], id="unknown-arg"),
    pytest.param({"timeframe": "4h"}, ["timeframe", "trades 1h bars"], id="other-timeframe"),
    pytest.param({"use_onnx": "sometimes"}, ["use_onnx"], id="use-onnx-value"),
    pytest.param({"cost_margin": -1}, ["cost_margin", "greater than or equal to 0"], id="negative-cost-margin"),
    pytest.param({"as_of": "2025-06-01"}, ["as_of", "candles end at", "collect_data"], id="beyond-the-store"),
    pytest.param({"as_of": "2021-01-02"}, ["as_of", "no 1h candles are stored"], id="before-the-store"),
    pytest.param({"model_id": None}, ["model_id", "needs a model"], id="no-model"),
    pytest.param({"model_id": None, "strategy": "confluence"}, ["symbols", "needs the assets"],
                 id="confluence-without-symbols"),
    pytest.param({"model_id": None, "symbols": ["BTC/USDT", "XTZ/USDT"]}, ["XTZ/USDT", "collect_data"],
                 id="confluence-candles-not-stored"),
]


@pytest.mark.parametrize(("args", "words"), BAD_INPUT)
async def test_bad_input_is_a_tool_error_naming_the_field(mcp: Client, model: dict, args: dict, words: list[str]):
    text = await error_of(mcp, "get_signals", {k: v for k, v in ({"model_id": model["model_id"]} | args).items()
                                               if v is not None})
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    await call(mcp, "list_models", {})  # the server keeps serving


async def test_changing_candles_after_t_leaves_the_signal_at_t(mcp: Client, home: Home, model: dict,
                                                              model_inputs: Inputs, confluence_inputs: Inputs):
    t = model_inputs.panel.index[len(model_inputs.panel.index) // 2]
    requests = [{"model_id": model["model_id"], "use_onnx": "never"}, CONFLUENCE]
    before = [await call(mcp, "get_signals", {**r, "as_of": t.isoformat()}) for r in requests]
    latest = await call(mcp, "get_signals", requests[0])
    originals = await tamper_after(home, [d["dataset_id"] for d in before[1]["data"]], t)
    try:
        after = [await call(mcp, "get_signals", {**r, "as_of": t.isoformat()}) for r in requests]
        for old, new in zip(before, after, strict=True):
            assert new["signals"] == old["signals"] and new["time"] == t.isoformat()
        changed = await call(mcp, "get_signals", requests[0])
        assert changed["signals"] != latest["signals"]  # the tampering did reach the bars after t
    finally:
        for path, (frame, provenance) in originals.items():
            home.candles.write(path, frame, provenance)


async def tamper_after(home: Home, dataset_ids: list[str], t: datetime) -> dict:
    """Move every candle after t (prices ×1.3, volume ×3); answers the originals to restore."""
    catalog = await home.catalog()
    originals = {}
    for dataset_id in dataset_ids:
        path = Path((await catalog.dataset(dataset_id)).path)
        frame, provenance = home.candles.read(path), home.candles.provenance(path)
        originals[path] = (frame, provenance)
        changed = frame.copy()
        later = changed.index > t
        changed.loc[later, ["open", "high", "low", "close"]] *= 1.3
        changed.loc[later, "volume"] *= 3
        home.candles.write(path, changed, provenance)
    return originals
