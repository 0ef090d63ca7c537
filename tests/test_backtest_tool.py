"""run_backtest, list_backtests and the trader://backtests resources through an MCP client, offline.

One server for the module, on the bundled hourly sample: a small XGBoost model is trained once through
train_model and backtested on its out-of-sample predictions; the confluence rule runs with no model.
"""

import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp_calls import call, error_of, read_text
from PIL import Image

from mcp_trader.backtest.records import BacktestSummary
from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
TRAIN = {"symbols": SYMBOLS, "days": 150, "as_of": "2024-09-30", "folds": 2, "xgboost": {"n_estimators": 20},
         "wait_seconds": 300}
CONFLUENCE = {"strategy": "confluence", "symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "DOT/USDT"],
              "end": "2024-09-30T23:00", "days": 120, "wait_seconds": 120}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mcp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    settings = Settings(home=tmp_path_factory.mktemp("backtest") / "home", offline=True)
    async with Client(build_server(settings)) as connected:
        yield connected


@pytest.fixture(scope="module")
async def model(mcp: Client) -> dict:
    return (await call(mcp, "train_model", TRAIN))["result"]


@pytest.fixture(scope="module")
async def model_run(mcp: Client, model: dict) -> dict:
    updates = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        updates.append((done, message))

    answer = await call(mcp, "run_backtest", {"model_id": model["model_id"], "edge": "implied", "wait_seconds": 120},
                        progress_callback=progress)
    return {"answer": answer, "summary": answer["result"], "updates": updates}


@pytest.fixture(scope="module")
async def confluence_run(mcp: Client) -> dict:
    return (await call(mcp, "run_backtest", CONFLUENCE))["result"]


async def test_the_tools_are_listed_with_their_contracts(mcp: Client):
    tools = {t.name: t for t in (await mcp.list_tools()).tools}
    run = tools["run_backtest"]
    props = run.input_schema["properties"]
    assert {"model_id", "strategy", "symbols", "start", "end", "capital", "risk", "costs"} <= set(props)
    assert {"job_id", "status", "result"} <= set(run.output_schema["properties"])
    assert run.annotations.read_only_hint is False and run.annotations.destructive_hint is False
    assert tools["list_backtests"].annotations.read_only_hint is True


async def test_a_model_backtest_trades_its_out_of_sample_predictions(model: dict, model_run: dict):
    answer, summary = model_run["answer"], model_run["summary"]
    assert answer["status"] == "succeeded"
    BacktestSummary.model_validate(summary)
    assert summary["strategy"] == "model" and summary["model_id"] == model["model_id"]
    assert "out-of-sample" in summary["signals"] and summary["synthetic"] is False
    assert summary["symbols"] == model["symbols"]
    assert summary["trades"]["trades"] > 0
    assert summary["trades"]["long_trades"] + summary["trades"]["short_trades"] == summary["trades"]["trades"]
    figures = summary["metrics"]
    assert figures["final_equity"] == pytest.approx(10_000 * (1 + figures["total_return"]))
    assert 0 <= figures["max_drawdown"] < 1 and summary["buy_and_hold"]["final_equity"] > 0
    assert summary["beats_buy_and_hold"] == (figures["total_return"] > summary["buy_and_hold"]["total_return"])
    assert summary["costs_paid"]["fees"] > 0 and summary["costs_paid"]["slippage"] > 0
    assert summary["exposure"]["max_open_positions"] <= 5
    assert "buy-and-hold" in summary["summary"]
    assert all(f["applied"] for f in summary["funding"])  # BTC, ETH and SOL have funding history in this span
    done = [u[0] for u in model_run["updates"]]
    assert done == sorted(done) and done[0] == 0.0


async def test_the_out_of_sample_span_follows_the_models_test_folds(mcp: Client, model: dict, model_run: dict):
    report = json.loads(await read_text(mcp, f"trader://models/{model['model_id']}"))
    summary = model_run["summary"]
    first_test = report["folds"][0]["test"]["start"]
    assert summary["start"][:19] == first_test[:19]  # the first out-of-sample bar, not earlier
    assert summary["end"][:19] <= report["folds"][-1]["test"]["end"][:19]


async def test_the_confluence_rule_runs_without_a_model(confluence_run: dict):
    summary = confluence_run
    assert summary["strategy"] == "confluence" and summary["model_id"] is None
    assert summary["symbols"] == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "DOT/USDT:USDT"]
    assert summary["bars"] == 120 * 24 and summary["start"].startswith("2024-06-03")
    assert summary["end"].startswith("2024-09-30T23:00") and "confluence score" in summary["signals"]
    assert summary["trades"]["trades"] > 0
    applied = {f["symbol"]: f["applied"] for f in summary["funding"]}
    assert applied == {"BTC/USDT:USDT": True, "ETH/USDT:USDT": True, "SOL/USDT:USDT": True, "DOT/USDT:USDT": False}
    assert "DOT/USDT:USDT: no funding history known for this asset: not applied" in summary["notes"]
    assert summary["costs_paid"]["funding"] != 0


async def test_every_run_carries_intervals_for_itself_and_buy_and_hold(mcp: Client, confluence_run: dict,
                                                                       model_run: dict):
    for summary in (confluence_run, model_run["summary"]):
        for figures, spread in ((summary["metrics"], summary["intervals"]),
                                (summary["buy_and_hold"], summary["buy_and_hold_intervals"])):
            assert spread["confidence"] == 0.95 and spread["samples"] == 1000 and spread["seed"] == 7
            assert spread["block_bars"] >= 1 and "stationary block bootstrap" in spread["method"]
            assert spread["sharpe"]["low"] < figures["sharpe"] < spread["sharpe"]["high"]
            assert spread["max_drawdown"]["low"] <= figures["max_drawdown"] <= spread["max_drawdown"]["high"]
            assert spread["annual_return"]["low"] < spread["annual_return"]["high"]
            years = summary["bars"] / 8766
            assert spread["sharpe_standard_error"] == pytest.approx(1 / years**0.5, rel=0.5)  # ≈ Lo's √(1/years)
        assert "95% interval" in summary["summary"]
    again = await call(mcp, "run_backtest", {**CONFLUENCE, "bootstrap": {"samples": 200, "seed": 3, "block_bars": 24}})
    spread = again["result"]["intervals"]
    assert (spread["samples"], spread["seed"], spread["block_bars"]) == (200, 3, 24)
    assert again["result"]["metrics"] == confluence_run["metrics"] and spread != confluence_run["intervals"]
    record = json.loads(await read_text(mcp, again["result"]["resources"]["record"]))
    assert record["bootstrap"] == {"samples": 200, "seed": 3, "block_bars": 24, "confidence": 0.95}


async def test_a_model_trades_only_the_edge_its_validation_bore_out(mcp: Client, model: dict):
    """By default a model trades its expected move as its validation bore it out, fold by fold: a model whose
    validation shows no skill beyond noise in any fold trades nothing."""
    default = (await call(mcp, "run_backtest", {"model_id": model["model_id"], "wait_seconds": 120}))["result"]
    scales = model["fold_edges"]
    assert len(scales) == len(model["folds"]) and all(s >= 0 for s in scales)
    assert f"validated edge of each fold ({', '.join(f'{s:.2f}' for s in scales)})" in " ".join(default["notes"])
    if not any(scales):
        assert default["trades"]["trades"] == 0 and default["metrics"]["total_return"] == 0


async def test_a_model_run_shows_the_baselines_beside_it(model_run: dict):
    summary = model_run["summary"]
    beside = {b["strategy"]: b for b in summary["baselines"]}
    assert set(beside) == {"flat", "trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum"}
    assert beside["flat"]["metrics"]["total_return"] == 0 and beside["flat"]["trades"] == 0
    for name in ("trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum"):
        run = beside[name]
        assert run["trades"] > 0 and run["intervals"]["sharpe"]["low"] < run["intervals"]["sharpe"]["high"]
        assert run["trades_per_day"] == pytest.approx(run["trades"] / (summary["bars"] / 24))
        assert run["costs_paid"]["fees"] > 0 and run["rule"] and run["turnover"] > 0


async def test_a_baseline_rule_runs_as_a_strategy(mcp: Client, model_run: dict):
    summary = model_run["summary"]
    symbols = [s.split(":")[0] for s in summary["symbols"]]
    rule = (await call(mcp, "run_backtest", {"strategy": "trend_1d", "symbols": symbols, "start": summary["start"],
                                             "end": summary["end"], "wait_seconds": 120}))["result"]
    beside = {b["strategy"]: b for b in summary["baselines"]}["trend_1d"]
    assert rule["strategy"] == "trend_1d" and "baseline trend_1d" in rule["signals"]
    assert (rule["start"], rule["end"]) == (summary["start"], summary["end"])
    assert rule["metrics"]["total_return"] == pytest.approx(beside["metrics"]["total_return"], rel=1e-9)
    assert rule["trades"]["trades"] == beside["trades"]


async def test_the_record_says_what_the_run_was_built_from(mcp: Client, model_run: dict):
    summary = model_run["summary"]
    record = json.loads(await read_text(mcp, summary["resources"]["record"]))
    assert record["id"] == summary["run_id"] and record["model_id"] == summary["model_id"]
    assert [d["dataset_id"] for d in record["data"]] == [
        f"sample.{s}-PERP.1h" for s in ("BTC-USDT", "ETH-USDT", "SOL-USDT")]
    assert all(d["content_hash"] for d in record["data"])
    assert len(record["candles_hash"]) == 64 and len(record["signals_hash"]) == 64
    limits = record["policy"]["limits"]  # the server's, as paper and live trade under
    assert limits["risk_per_trade"] == 0.01 and limits["max_positions"] == 5 and limits["max_order_notional"] == 5000
    assert record["risk"]["max_order_notional"] is None  # nothing overridden
    assert record["costs"]["taker_fee"] == 0.00035 and record["costs"]["maker_fee"] == 0.0001
    assert record["policy"]["max_hold_bars"] == 24  # the model's label horizon
    assert record["request"]["model_id"] == summary["model_id"] and record["request"]["signals"] == "out_of_sample"
    assert record["versions"]["mcp-trader"] and record["versions"]["numba"]
    months = record["monthly_returns"]
    assert months and all(set(row) == {"year", "months", "year_return"} for row in months)


async def test_equity_trades_and_chart_read_back(mcp: Client, model_run: dict):
    summary = model_run["summary"]
    uris = summary["resources"]
    curve = json.loads(await read_text(mcp, uris["equity"]))
    assert len(curve["time"]) == len(curve["equity"]) == len(curve["drawdown"]) == summary["bars"]
    assert curve["equity"][-1] == pytest.approx(summary["metrics"]["final_equity"], abs=1e-3)
    assert max(curve["drawdown"]) <= 0 and max(curve["open_positions"]) <= 5
    assert curve["margin_used"] == [pytest.approx(g / 3, abs=1e-3) for g in curve["gross_exposure"]]

    rows = list(csv.DictReader(io.StringIO(await read_text(mcp, uris["trades"]))))
    assert len(rows) == summary["trades"]["trades"]
    pnl = sum(float(r["pnl"]) for r in rows)
    assert pnl == pytest.approx(summary["metrics"]["final_equity"] - 10_000, rel=1e-6, abs=1e-6)
    assert all(r["decision_time"] < r["entry_time"] <= r["exit_time"] for r in rows)
    assert {r["exit_reason"] for r in rows} <= {"signal", "stop", "take_profit", "time", "end"}

    chart = (await mcp.read_resource(uris["equity_chart"])).contents[0]
    assert chart.mime_type == "image/png"
    data = base64.b64decode(chart.blob)
    assert data[:8] == PNG
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size[0] >= 800 and image.size[1] >= 500


async def _entry_notionals(client: Client, summary: dict) -> list[float]:
    rows = csv.DictReader(io.StringIO(await read_text(client, summary["resources"]["trades"])))
    return [float(r["quantity"]) * float(r["entry_price"]) for r in rows]


async def test_a_run_trades_under_the_servers_limits_unless_its_risk_overrides_them(
        mcp: Client, confluence_run: dict, tmp_path: Path):
    """The order notional limit the guard enforces on paper and live orders sizes the backtest too: the server's
    5,000 USDT by default, a run's override for that run only, and a server configured lower for every run. Sizes
    are set at the decision close; fills at the next open move the notional by that bar's gap at most."""
    record = json.loads(await read_text(mcp, confluence_run["resources"]["record"]))
    assert record["policy"]["limits"]["max_order_notional"] == 5_000
    assert max(await _entry_notionals(mcp, confluence_run)) <= 5_000 * 1.02
    small = (await call(mcp, "run_backtest", {**CONFLUENCE, "risk": {"max_order_notional": 1_000}}))["result"]
    notionals = await _entry_notionals(mcp, small)
    assert max(notionals) <= 1_000 * 1.02 and sum(n > 900 for n in notionals) > len(notionals) / 2  # it binds
    small_record = json.loads(await read_text(mcp, small["resources"]["record"]))
    assert small_record["risk"]["max_order_notional"] == 1_000
    assert small_record["policy"]["limits"] == {**record["policy"]["limits"], "max_order_notional": 1_000}
    configured = Settings(home=tmp_path / "home", offline=True, limits={"max_order_notional": 1_000})
    async with Client(build_server(configured)) as other:
        same = (await call(other, "run_backtest", CONFLUENCE))["result"]
        assert await _entry_notionals(other, same) == pytest.approx(notionals, rel=1e-9)


async def test_runs_are_listed_newest_first(mcp: Client, model_run: dict, confluence_run: dict):
    listed = (await call(mcp, "list_backtests", {}))["result"]
    ids = [r["run_id"] for r in listed]
    assert model_run["summary"]["run_id"] in ids and confluence_run["run_id"] in ids
    assert [r["created_at"] for r in listed] == sorted((r["created_at"] for r in listed), reverse=True)
    resource = json.loads(await read_text(mcp, "trader://backtests"))["backtests"]
    assert [r["run_id"] for r in resource] == ids
    assert resource[0]["uri"] == f"trader://backtests/{ids[0]}"


async def test_unknown_runs_are_resource_errors(mcp: Client):
    for suffix in ("", "/equity", "/equity.png", "/trades"):
        with pytest.raises(Exception, match="no backtest 'bt-nope'"):
            await mcp.read_resource(f"trader://backtests/bt-nope{suffix}")


BAD_INPUT = [
    pytest.param({**CONFLUENCE, "start": "2024-06-01", "end": "2024-05-01", "days": None}, "start",
                 ["not before end"], id="start-after-end"),
    pytest.param({**CONFLUENCE, "costs": {"taker_fee": -0.001}}, "taker_fee", ["greater than or equal to 0"],
                 id="negative-fee"),
    pytest.param({**CONFLUENCE, "risk": {"risk_per_trade": 1.0}}, "risk_per_trade", ["less than 1"],
                 id="risk-100-percent"),
    pytest.param({**CONFLUENCE, "risk": {"risk_per_trade": 1.5}}, "risk_per_trade", ["less than 1"],
                 id="risk-above-100-percent"),
    pytest.param({"model_id": "mdl-nope"}, "no model 'mdl-nope'", ["list_models"], id="unknown-model"),
    pytest.param({"strategy": "model"}, "model_id", ["confluence"], id="model-strategy-without-a-model"),
    pytest.param({"strategy": "confluence"}, "symbols", ["two to 50"], id="confluence-without-symbols"),
    pytest.param({**CONFLUENCE, "capital": 0}, "capital", ["greater than 0"], id="no-capital"),
    pytest.param({**CONFLUENCE, "symbols": ["BTC/USDT", "NOPE"]}, "symbols[1]", ["not a symbol"],
                 id="bad-symbol"),
    pytest.param({**CONFLUENCE, "risk_per_trade": 2.0}, "risk_per_trade: is not an argument of run_backtest",
                 ['it is a field of risk (pass risk={"risk_per_trade": …})', "accepted: bootstrap, capital"],
                 id="risk-setting-at-the-top-level"),
    pytest.param({**CONFLUENCE, "risk": {"stop_at": 1.5}}, "risk.stop_at: is not a field of risk",
                 ["nearest: stop_atr", "accepted: allow_short"], id="misspelt-risk-field"),
    pytest.param({**CONFLUENCE, "costs": {"fee": 0.001}}, "costs.fee: is not a field of costs",
                 ["maker_fee", "taker_fee"], id="unknown-cost-field"),
    pytest.param({**CONFLUENCE, "bootstrap": {"samples": 0}}, "bootstrap.samples",
                 ["greater than or equal to 100"], id="bootstrap-without-samples"),
    pytest.param({**CONFLUENCE, "bootstrap": {"reps": 500}}, "bootstrap.reps: is not a field of bootstrap",
                 ["samples"], id="unknown-bootstrap-field"),
    pytest.param({**CONFLUENCE, "cost_margin": -0.5}, "cost_margin", ["greater than or equal to 0"],
                 id="negative-cost-margin"),
    pytest.param({**CONFLUENCE, "strategy": "trend_2h"}, "strategy", ["trend_4h", "momentum"],
                 id="unknown-baseline"),
    pytest.param({**CONFLUENCE, "capitl": 5000}, "capitl: is not an argument of run_backtest",
                 ["nearest: capital"], id="misspelt-argument"),
]


@pytest.mark.parametrize(("args", "field", "words"), BAD_INPUT)
async def test_bad_input_is_a_tool_error_naming_the_field(mcp: Client, args: dict, field: str, words: list[str]):
    text = await error_of(mcp, "run_backtest", {k: v for k, v in args.items() if v is not None})
    assert field in text, text
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    await call(mcp, "list_backtests", {})  # the server keeps serving


async def test_a_refused_setting_runs_nothing(mcp: Client):
    before = await call(mcp, "list_backtests", {})
    await error_of(mcp, "run_backtest", {**CONFLUENCE, "risk_per_trade": 2.0})
    assert await call(mcp, "list_backtests", {}) == before


async def test_a_model_symbol_outside_its_universe_is_refused(mcp: Client, model: dict):
    text = await error_of(mcp, "run_backtest", {"model_id": model["model_id"], "symbols": ["XRP/USDT"]})
    assert "symbols[0]" in text and "not trained on XRP/USDT:USDT" in text
    text = await error_of(mcp, "run_backtest", {"model_id": model["model_id"], "timeframe": "4h"})
    assert "timeframe" in text and "trades 1h bars" in text
    text = await error_of(mcp, "run_backtest", {"model_id": model["model_id"], "end": "2023-01-01"})
    assert "out-of-sample predictions cover" in text


async def test_a_kept_model_trades_the_bars_after_its_training_data(mcp: Client):
    early = (await call(mcp, "train_model", {**TRAIN, "as_of": "2024-06-30T23:00"}))["result"]
    answer = await call(mcp, "run_backtest", {"model_id": early["model_id"], "signals": "after_training",
                                              "end": "2024-09-30T23:00", "edge": "implied", "wait_seconds": 120})
    summary = answer["result"]
    assert summary["start"] > early["trained_until"] and summary["end"].startswith("2024-09-30T23:00")
    assert "after its training data" in summary["signals"] and summary["symbols"] == early["symbols"]
    assert summary["bars"] >= 90 * 24 and summary["trades"]["trades"] > 0
    forward = summary["forward"]
    walk_forward = (await call(mcp, "run_backtest", {"model_id": early["model_id"], "edge": "implied",
                                                     "wait_seconds": 120}))["result"]
    assert forward["out_of_sample"]["sharpe"] == pytest.approx(walk_forward["metrics"]["sharpe"])
    assert forward["out_of_sample"]["sharpe_interval"] == walk_forward["intervals"]["sharpe"]
    assert forward["after_training"]["sharpe"] == pytest.approx(summary["metrics"]["sharpe"])
    band, realised = forward["out_of_sample"]["sharpe_interval"], summary["metrics"]["sharpe"]
    assert forward["inside"] == (band["low"] <= realised <= band["high"])
    assert ("inside" if forward["inside"] else "the out-of-sample 95% interval") in forward["verdict"]
    per_day = summary["trades"]["trades"] / (summary["bars"] / 24)
    assert forward["after_training"]["trades_per_day"] == pytest.approx(per_day)
    assert walk_forward["forward"] is None  # only an after-training run is held against another

    text = await error_of(mcp, "run_backtest", {"model_id": early["model_id"], "signals": "after_training",
                                                "start": "2024-06-01"})
    assert "start" in text and "saw labels up to" in text and "out_of_sample" in text


async def test_a_run_is_reproduced_from_its_record(mcp: Client, confluence_run: dict):
    record = json.loads(await read_text(mcp, confluence_run["resources"]["record"]))
    again = (await call(mcp, "run_backtest", {**record["request"], "wait_seconds": 120}))["result"]
    assert again["run_id"] != confluence_run["run_id"]
    replay = json.loads(await read_text(mcp, again["resources"]["record"]))
    for key in ("candles_hash", "signals_hash", "metrics", "trades", "costs_paid", "buy_and_hold"):
        assert replay[key] == record[key], key


async def test_a_run_on_synthetic_data_says_so(mcp: Client):
    summary = (await call(mcp, "run_backtest", {"strategy": "confluence", "symbols": ["BTC/USDT", "ETH/USDT"],
                                                "sources": ["synthetic"], "end": "2025-06-30", "days": 60}))["result"]
    assert summary["synthetic"] is True and "SYNTHETIC data" in summary["summary"]
    assert any("SYNTHETIC" in note for note in summary["notes"])
    listed = {r["run_id"]: r for r in (await call(mcp, "list_backtests", {}))["result"]}
    assert listed[summary["run_id"]]["synthetic"] is True
