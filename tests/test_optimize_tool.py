"""optimize and the trader://studies resources through an MCP client, offline, and a second process joining.

One server for the module: a small confluence study (fast trials) read back through every resource and
joined by an `mcp-trader optimize-worker` subprocess on the same SQLite storage, and a small XGBoost study.
"""

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import optuna
import pytest
from mcp import Client
from mcp_calls import call, error_of, read_json
from PIL import Image

from mcp_trader.config import Settings
from mcp_trader.optimize.overfitting import probability_of_overfitting
from mcp_trader.optimize.records import StudySummary
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
BASE = {"symbols": SYMBOLS, "days": 150, "as_of": "2024-09-30", "folds": 2, "wait_seconds": 300}
RULE = {**BASE, "target": "confluence", "n_trials": 12, "study": "rule-study"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("optimize") / "home", offline=True)


@pytest.fixture(scope="module")
async def mcp(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as connected:
        yield connected


@pytest.fixture(scope="module")
async def rule_study(mcp: Client) -> dict:
    updates = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        updates.append((done, message))

    answer = await call(mcp, "optimize", RULE, progress_callback=progress)
    return {"answer": answer, "summary": answer["result"], "updates": updates}


async def test_the_tool_is_listed_with_its_contract(mcp: Client):
    tool = {t.name: t for t in (await mcp.list_tools()).tools}["optimize"]
    props = tool.input_schema["properties"]
    assert {"target", "n_trials", "timeout_s", "study", "storage", "symbols"} <= set(props)
    assert props["n_trials"]["default"] == 100 and props["n_trials"]["minimum"] == 1
    assert set(props["target"]["enum"]) == {"xgboost", "lstm", "confluence", "trend_4h", "trend_1d", "breakout_4h",
                                            "breakout_1d", "momentum"}


async def test_a_study_reports_trials_the_best_and_its_deflated_sharpe(rule_study: dict):
    answer, summary = rule_study["answer"], rule_study["summary"]
    assert answer["status"] == "succeeded"
    StudySummary.model_validate(summary)
    assert summary["study"] == "rule-study" and summary["target"] == "confluence" and summary["this_run"] == 12
    counts = summary["trials"]
    assert counts["total"] == 12 == counts["complete"] + counts["pruned"] + counts["failed"]
    assert counts["failed"] == 0 and counts["running"] == 0
    best = summary["best"]
    assert set(best["params"]) == {"threshold", "stop_atr", "take_profit_atr", "max_hold_bars", "cost_margin"}
    assert len(best["fold_sharpes"]) == 2
    deflated = summary["deflated"]
    assert deflated["trials"] == counts["complete"] + counts["pruned"]
    assert 0 <= deflated["deflated_sharpe"] <= 1
    assert deflated["p_fluke"] == pytest.approx(1 - deflated["deflated_sharpe"])
    assert f"Best of {deflated['trials']} trials tried" in summary["verdict"]
    assert ("NOT significant" in summary["verdict"]) == (not deflated["significant"])
    assert summary["dashboard"].startswith("optuna-dashboard sqlite:///")
    assert "mcp-trader optimize-worker --study rule-study" in summary["join"]
    done = [u[0] for u in rule_study["updates"]]
    assert done == sorted(done) and sum("done (" in (u[1] or "") for u in rule_study["updates"]) >= 1


async def test_a_study_reports_its_probability_of_backtest_overfitting(settings: Settings, rule_study: dict):
    summary = rule_study["summary"]
    found = summary["overfitting"]
    assert found["trials"] == summary["trials"]["complete"] and found["blocks"] == 16 and found["splits"] == 12870
    assert 0 <= found["pbo"] <= 1 and 0 <= found["best_loses_out_of_sample"] <= 1
    assert f"probability of backtest overfitting (CSCV over {found['trials']} completed trials)" in summary["verdict"]
    study = optuna.load_study(study_name="rule-study", storage=f"sqlite:///{settings.studies_path}")
    blocks = [t.user_attrs["block_moments"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len({tuple(row[0] for row in b) for b in blocks}) == 1  # every trial on the same bars
    assert probability_of_overfitting(blocks).pbo == pytest.approx(found["pbo"])


async def test_a_baseline_rule_is_a_target_whose_exits_are_tuned(mcp: Client):
    answer = await call(mcp, "optimize", {**BASE, "target": "trend_1d", "n_trials": 4, "study": "trend-study"})
    summary = answer["result"]
    assert answer["status"] == "succeeded" and summary["target"] == "trend_1d"
    assert summary["trials"]["complete"] + summary["trials"]["pruned"] == 4 and summary["trials"]["failed"] == 0
    assert set(summary["best"]["params"]) == {"stop_atr", "take_profit_atr", "max_hold_bars"}
    assert summary["best"]["trades"] > 0 and summary["deflated"]["trials"] == 4
    text = await error_of(mcp, "optimize", {**BASE, "target": "trend_2h", "n_trials": 1})
    assert "target" in text and "trend_1d" in text


async def test_the_best_trial_is_the_highest_completed_sharpe(mcp: Client, rule_study: dict):
    trials = (await read_json(mcp, "trader://studies/rule-study/trials"))["trials"]
    complete = [t for t in trials if t["state"] == "complete"]
    assert max(t["value"] for t in complete) == pytest.approx(rule_study["summary"]["best"]["sharpe"])
    assert all(t["worker"] for t in trials)
    assert [t["number"] for t in trials] == list(range(len(trials)))


async def test_the_study_resources_read_back(mcp: Client, rule_study: dict):
    uris = rule_study["summary"]["resources"]
    listed = (await read_json(mcp, "trader://studies"))["studies"]
    assert any(s["study"] == "rule-study" and s["target"] == "confluence" for s in listed)
    summary = await read_json(mcp, uris["summary"])
    assert summary["best"] == rule_study["summary"]["best"] and summary["this_run"] == 0
    importances = await read_json(mcp, uris["importances"])
    values = importances["importances"]
    assert set(values) <= {"threshold", "stop_atr", "take_profit_atr", "max_hold_bars", "cost_margin"}
    assert sum(values.values()) == pytest.approx(1.0, abs=1e-6)
    for key in ("trials_chart", "importances_chart"):
        content = (await mcp.read_resource(uris[key])).contents[0]
        assert content.mime_type == "image/png"
        data = base64.b64decode(content.blob)
        assert data[:8] == PNG
        Image.open(io.BytesIO(data)).load()


async def test_a_second_process_joins_the_study_through_its_storage(mcp: Client, rule_study: dict,
                                                                     settings: Settings, tmp_path: Path):
    storage = f"sqlite:///{settings.studies_path}"
    env = {**os.environ, "MCP_TRADER_OFFLINE": "1", "MCP_TRADER_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-m", "mcp_trader.server", "optimize-worker", "--study", "rule-study", "--storage", storage,
         "--trials", "3", "--home", str(tmp_path / "worker-home")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    joined = json.loads(out.stdout)
    assert joined["this_run"] == 3 and joined["trials"]["total"] == 15
    assert out.stderr.count(" done (") == 3
    trials = (await read_json(mcp, "trader://studies/rule-study/trials"))["trials"]
    assert [t["number"] for t in trials] == list(range(15))
    workers = {t["worker"] for t in trials}
    assert len(workers) == 2  # this server's process and the worker's


async def test_a_study_is_resumed_by_name(mcp: Client, rule_study: dict):
    again = (await call(mcp, "optimize", {**RULE, "n_trials": 2}))["result"]
    assert again["this_run"] == 2 and again["trials"]["total"] >= 14
    text = await error_of(mcp, "optimize", {**RULE, "n_trials": 1, "folds": 3})
    assert "study" in text and "exists with other settings (folds)" in text


async def test_an_xgboost_study_tunes_the_learner_labels_and_strategy(mcp: Client):
    summary = (await call(mcp, "optimize", {**BASE, "target": "xgboost", "n_trials": 3}))["result"]
    assert summary["trials"]["total"] == 3 and summary["study"].startswith("xgboost-")
    params = (await read_json(mcp, summary["resources"]["trials"]))["trials"][0]["params"]
    assert {"max_depth", "learning_rate", "horizon", "barrier", "min_confidence", "stop_atr",
            "cost_margin"} <= set(params)


BAD_INPUT = [
    pytest.param({"n_trials": 0}, "n_trials", ["greater than or equal to 1"], id="no-trials"),
    pytest.param({"n_trials": -5}, "n_trials", ["greater than or equal to 1"], id="negative-trials"),
    pytest.param({"storage": "postgresql://trader:s3cret-pw@127.0.0.1:1/studies"}, "storage",
                 ["cannot open the study storage", "postgresql://trader:***@127.0.0.1:1/studies"],
                 id="unreachable-storage"),
    pytest.param({"storage": "nonsense"}, "storage", ["cannot open the study storage"], id="unreadable-storage"),
    pytest.param({"target": "forest"}, "target", ["confluence"], id="unknown-target"),
    pytest.param({"symbols": ["BTC/USDT"]}, "symbols", ["at least two symbols"], id="one-symbol"),
    pytest.param({"study": "bad name!"}, "study", ["pattern"], id="bad-study-name"),
]


@pytest.mark.parametrize(("args", "field", "words"), BAD_INPUT)
async def test_bad_input_is_a_tool_error_naming_the_field(mcp: Client, args: dict, field: str, words: list[str]):
    text = await error_of(mcp, "optimize", {**BASE, "target": "confluence", "n_trials": 1, **args})
    assert field in text, text
    for word in words:
        assert word in text, text
    assert "s3cret-pw" not in text and "Traceback" not in text
    await call(mcp, "list_models", {})  # the server keeps serving


async def test_an_unknown_study_is_a_resource_error(mcp: Client):
    for suffix in ("", "/trials", "/trials.png", "/importances", "/importances.png"):
        with pytest.raises(Exception, match="no study 'nope'"):
            await mcp.read_resource(f"trader://studies/nope{suffix}")
