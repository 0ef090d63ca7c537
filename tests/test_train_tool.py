"""train_model, list_models, the job tools and the model/job resources through an MCP client, offline.

One server for the whole module, on the bundled hourly sample with small settings: each learner is
trained once and its model read back by several tests.
"""

import base64
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from mcp import Client
from mcp_calls import call, error_of, read_json

from mcp_trader.config import Settings
from mcp_trader.models.records import TrainingSummary
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
BASE = {"symbols": SYMBOLS, "days": 120, "as_of": "2024-09-30", "folds": 2}
XGB = {"n_estimators": 20}
LSTM = {"hidden": 8, "layers": 1, "seq_len": 8, "epochs": 1, "samples_per_epoch": 256, "batch_size": 64}
SLOW_LSTM = {"hidden": 32, "layers": 2, "seq_len": 32, "epochs": 200, "patience": 100, "samples_per_epoch": 4096,
             "batch_size": 64}  # a second or so per epoch here: runs for minutes unless cancelled
PROGRESS_LSTM = {"hidden": 32, "layers": 1, "seq_len": 16, "epochs": 2, "samples_per_epoch": 16384, "batch_size": 64}
RUNS = {
    "xgboost": {"kind": "xgboost", "xgboost": XGB},
    "lstm": {"kind": "lstm", "lstm": LSTM},
    "ensemble": {"kind": "ensemble", "xgboost": XGB, "lstm": LSTM},
    "aster_native": {"kind": "xgboost", "variant": "aster_native", "xgboost": XGB},
}
THIN_ASSET = ("listing_age", "amihud", "spread")
PNG = b"\x89PNG\r\n\x1a\n"


def has_cuda() -> bool:
    from mcp_trader.models.device import cuda_available

    return cuda_available()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("train") / "home", offline=True)


@pytest.fixture(scope="module")
async def mcp(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as connected:
        yield connected


@pytest.fixture(scope="module")
async def trained(mcp: Client) -> dict[str, dict]:
    """Each run's JobView answer and the progress notifications its call received."""
    runs = {}
    for name, args in RUNS.items():
        updates = []

        async def progress(done: float, total: float | None, message: str | None, updates=updates) -> None:
            updates.append((done, total, message))

        answer = await call(mcp, "train_model", {**BASE, **args, "wait_seconds": 300}, progress_callback=progress)
        runs[name] = {"answer": answer, "summary": answer["result"], "updates": updates}
    return runs


async def model_ids(client: Client) -> set[str]:
    return {m["model_id"] for m in (await call(client, "list_models", {}))["result"]}


async def test_tools_are_listed_with_their_contracts(mcp: Client):
    tools = {t.name: t for t in (await mcp.list_tools()).tools}
    train = tools["train_model"]
    props = train.input_schema["properties"]
    assert train.input_schema["required"] == ["symbols"]
    assert set(props["kind"]["enum"]) == {"xgboost", "lstm", "ensemble"}
    assert set(props["variant"]["enum"]) == {"general", "aster_native"}
    assert props["wait_seconds"]["maximum"] == 300
    assert {"job_id", "status", "progress", "result", "next_step"} <= set(train.output_schema["properties"])
    assert train.annotations.read_only_hint is False
    assert tools["get_job"].annotations.read_only_hint is True
    assert tools["cancel_job"].annotations.destructive_hint is True
    assert tools["list_models"].annotations.read_only_hint is True


@pytest.mark.parametrize("name", list(RUNS))
async def test_each_learner_trains_and_is_scored_against_baselines(trained: dict, name: str):
    answer, summary = trained[name]["answer"], trained[name]["summary"]
    assert answer["status"] == "succeeded" and answer["progress"] == 1.0 and answer["next_step"] is None
    TrainingSummary.model_validate(summary)
    kind = RUNS[name]["kind"]
    assert summary["model_id"].startswith(f"mdl-{kind}-") and summary["kind"] == kind
    assert summary["variant"] == RUNS[name].get("variant", "general")
    assert summary["symbols"] == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    assert summary["synthetic"] is False and summary["horizon"] == 24 and summary["timeframe"] == "1h"
    verdict = summary["verdict"]
    assert isinstance(verdict["beats_baselines"], bool)
    assert "baselines" in verdict["summary"] and "majority" in verdict["summary"]
    assert "momentum" in verdict["summary"]
    assert set(summary["baselines"]) == {"majority", "momentum"}
    for figures in [summary["out_of_sample"], *summary["baselines"].values(), *summary["folds"]]:
        assert 0 <= figures["accuracy"] <= 1 and figures["log_loss"] > 0
    assert len(summary["folds"]) == 2
    assert summary["test_rows"] > 0
    assert summary["device"] == ("cuda" if has_cuda() else "cpu")
    if kind == "lstm":
        assert summary["top_features"] == []
    else:
        assert 0 < len(summary["top_features"]) <= 10
    model = summary["model_id"]
    assert summary["resources"] == {
        "report": f"trader://models/{model}",
        "importances": f"trader://models/{model}/feature-importances.json",
        "importances_chart": f"trader://models/{model}/feature-importances.png",
    }


async def test_the_report_records_how_each_model_was_built(mcp: Client, trained: dict):
    for name, run in trained.items():
        summary = run["summary"]
        report = await read_json(mcp, summary["resources"]["report"])
        assert report["id"] == summary["model_id"] and report["kind"] == RUNS[name]["kind"]
        assert report["features"] and len(set(report["features"])) == len(report["features"])
        assert len(report["folds"]) == report["walk_forward"]["folds"] == 2
        assert sum(f["test_rows"] for f in report["folds"]) == summary["test_rows"]
        assert report["walk_forward"]["embargo"] >= report["labels"]["horizon"] == 24
        for fold in report["folds"]:  # test blocks follow training, never overlap it
            assert fold["train"]["end"] < fold["val"]["start"] <= fold["val"]["end"] < fold["test"]["start"]
            assert set(fold["baselines"]) == {"majority", "momentum"}
        assert [i["dataset_id"] for i in report["inputs"]] == [
            f"sample.{s}-PERP.1h" for s in ("BTC-USDT", "ETH-USDT", "SOL-USDT")
        ]
        assert report["feature_set_id"].startswith("fs-") and report["feature_set_hash"]
        features = await read_json(mcp, f"trader://features/{report['feature_set_id']}")
        assert features["id"] == report["feature_set_id"]
        versions = report["versions"]
        assert ("xgboost" in versions) == (RUNS[name]["kind"] != "lstm")
        assert ("torch" in versions) == (RUNS[name]["kind"] != "xgboost")
        assert report["device"] == summary["device"] and report["training_seconds"] > 0
        assert set(report["verdict"]) == {"beats_baselines", "summary"}


async def test_the_aster_native_variant_adds_thin_asset_features(mcp: Client, trained: dict):
    native = await read_json(mcp, trained["aster_native"]["summary"]["resources"]["report"])
    general = await read_json(mcp, trained["xgboost"]["summary"]["resources"]["report"])
    for part in THIN_ASSET:
        assert any(part in f for f in native["features"]), part
        assert not any(part in f for f in general["features"]), part
    assert set(general["features"]) < set(native["features"])
    assert native["variant"] == "aster_native" and general["variant"] == "general"


async def test_progress_is_notified_while_training(mcp: Client, trained: dict):
    for name, run in trained.items():
        done = [u[0] for u in run["updates"]]
        assert done and done[0] == 0.0, name  # at least "queued", whatever the speed of this machine
        assert done == sorted(done) and len(set(done)) == len(done), done  # MCP: strictly increasing
        assert all(0 <= d <= 1 for d in done) and all(u[1] == 1.0 for u in run["updates"])

    updates = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        updates.append((done, total, message))

    # a few seconds of fitting with a report every batch, so that the 0.2 s polling sees several steps
    answer = await call(mcp, "train_model", {**BASE, "kind": "lstm", "lstm": PROGRESS_LSTM, "wait_seconds": 300},
                        progress_callback=progress)
    assert answer["status"] == "succeeded"
    done = [u[0] for u in updates]
    assert done == sorted(done) and len(set(done)) == len(done), done
    assert all(0 <= d <= 1 for d in done) and all(u[1] == 1.0 for u in updates)
    folds = [u[2] for u in updates if u[2] and u[2].startswith("fold ")]
    assert len(folds) >= 3 and any("fold 2/2" in m for m in folds), updates
    assert all("lstm epoch" in m for m in folds)


async def test_a_long_call_answers_with_a_job_to_poll(mcp: Client):
    started = await call(mcp, "train_model", {**BASE, **RUNS["xgboost"], "wait_seconds": 0})
    job_id = started["job_id"]
    assert started["status"] in ("queued", "running") and started["result"] is None
    assert f"get_job(job_id='{job_id}'" in started["next_step"] and "cancel_job" in started["next_step"]
    assert started["kind"] == "train_model"

    updates = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        updates.append(done)

    deadline = time.monotonic() + 300  # seconds here; longer on a loaded machine
    while True:
        job = await call(mcp, "get_job", {"job_id": job_id, "wait_seconds": 10}, progress_callback=progress)
        if job["status"] == "succeeded" or time.monotonic() > deadline:
            break
        assert job["status"] in ("queued", "running") and job["next_step"]
    assert job["status"] == "succeeded" and job["next_step"] is None and job["finished_at"]
    summary = TrainingSummary.model_validate(job["result"])
    assert summary.model_id in await model_ids(mcp)
    assert updates == sorted(updates)

    record = await read_json(mcp, f"trader://jobs/{job_id}")
    assert record["status"] == "succeeded" and record["result"]["model_id"] == summary.model_id
    assert record["params"]["kind"] == "xgboost" and record["params"]["folds"] == 2
    listed = {j["id"]: j for j in (await read_json(mcp, "trader://jobs"))["jobs"]}
    assert listed[job_id]["status"] == "succeeded" and listed[job_id]["uri"] == f"trader://jobs/{job_id}"
    again = await call(mcp, "get_job", {"job_id": job_id})  # a finished job answers at once, the same
    assert again["result"] == job["result"]


async def test_cancelling_a_training_job_keeps_nothing(mcp: Client, settings: Settings):
    models_before = await model_ids(mcp)
    folders_before = set(settings.models_dir.iterdir()) if settings.models_dir.exists() else set()
    started = await call(mcp, "train_model", {**BASE, "kind": "lstm", "lstm": SLOW_LSTM, "wait_seconds": 0})
    job_id = started["job_id"]
    deadline = time.monotonic() + 120
    while True:  # until it is fitting (features are built in the first 5 %)
        job = await call(mcp, "get_job", {"job_id": job_id, "wait_seconds": 0.5})
        assert job["status"] in ("queued", "running"), job
        if job["progress"] > 0.05 and "fold" in job["message"]:
            break
        assert time.monotonic() < deadline, job
    asked = time.monotonic()
    cancelled = await call(mcp, "cancel_job", {"job_id": job_id})
    assert time.monotonic() - asked < 10
    assert cancelled["status"] == "cancelled" and cancelled["result"] is None and cancelled["finished_at"]
    assert cancelled["next_step"] is None
    assert (await call(mcp, "get_job", {"job_id": job_id}))["status"] == "cancelled"
    assert (await read_json(mcp, f"trader://jobs/{job_id}"))["status"] == "cancelled"

    assert await model_ids(mcp) == models_before
    folders_after = set(settings.models_dir.iterdir()) if settings.models_dir.exists() else set()
    assert folders_after == folders_before  # neither a model folder nor a .partial staging folder
    assert not [p for p in folders_after if p.name.endswith(".partial")]

    text = await error_of(mcp, "cancel_job", {"job_id": job_id})
    assert "job_id" in text and "already finished" in text and "cancelled" in text


async def test_model_resources_read_back(mcp: Client, trained: dict):
    summary = trained["xgboost"]["summary"]
    model, uris = summary["model_id"], summary["resources"]
    listed = {m["model_id"]: m for m in (await read_json(mcp, "trader://models"))["models"]}
    assert {r["summary"]["model_id"] for r in trained.values()} <= set(listed)
    assert listed[model]["uri"] == uris["report"] and listed[model]["kind"] == "xgboost"
    assert listed[model]["beats_baselines"] == summary["verdict"]["beats_baselines"]

    report = await read_json(mcp, uris["report"])
    assert report["id"] == model and report["overall"]["rows"] == summary["test_rows"]

    importances = await read_json(mcp, uris["importances"])
    rows = importances["importances"]
    assert importances["model_id"] == model and importances["note"] is None and rows
    gains = [r["gain"] for r in rows]
    assert gains == sorted(gains, reverse=True)
    assert sum(gains) == pytest.approx(1.0, abs=1e-3)
    assert all(r["shap"] >= 0 for r in rows)
    assert {r["feature"] for r in rows} <= set(report["features"])
    assert [r["feature"] for r in rows[:10]] == [f["feature"] for f in summary["top_features"]]

    chart = (await mcp.read_resource(uris["importances_chart"])).contents[0]
    assert chart.mime_type == "image/png"
    assert base64.b64decode(chart.blob)[:8] == PNG


async def test_an_lstm_has_no_feature_importances(mcp: Client, trained: dict):
    uris = trained["lstm"]["summary"]["resources"]
    importances = await read_json(mcp, uris["importances"])
    assert importances["importances"] == [] and "no feature importances" in importances["note"]
    with pytest.raises(Exception, match="no feature importances"):
        await mcp.read_resource(uris["importances_chart"])
    ensemble = await read_json(mcp, trained["ensemble"]["summary"]["resources"]["importances"])
    assert ensemble["importances"] and ensemble["note"] is None


async def test_unknown_models_are_resource_errors(mcp: Client):
    for suffix in ("", "/feature-importances.json", "/feature-importances.png"):
        with pytest.raises(Exception, match="no model 'mdl-nope'"):
            await mcp.read_resource(f"trader://models/mdl-nope{suffix}")
    with pytest.raises(Exception, match="no job 'job-nope'"):
        await mcp.read_resource("trader://jobs/job-nope")


async def test_list_models_lists_what_was_trained(mcp: Client, trained: dict):
    models = (await call(mcp, "list_models", {}))["result"]
    by_id = {m["model_id"]: m for m in models}
    created = [m["created_at"] for m in models]
    assert created == sorted(created, reverse=True)  # newest first
    for name, run in trained.items():
        summary = run["summary"]
        listed = by_id[summary["model_id"]]
        assert listed["kind"] == RUNS[name]["kind"] and listed["variant"] == summary["variant"]
        assert listed["beats_baselines"] == summary["verdict"]["beats_baselines"]
        assert listed["log_loss"] == pytest.approx(summary["out_of_sample"]["log_loss"])
        assert listed["uri"] == f"trader://models/{summary['model_id']}"
        assert listed["horizon"] == 24 and listed["symbols"] == summary["symbols"] and listed["synthetic"] is False


async def test_meta_labels_take_only_the_primary_side(mcp: Client):
    """target='meta': the labels are the barrier outcome where it agrees with the momentum side, HOLD elsewhere;
    the model is scored and backtested as any other."""
    answer = await call(mcp, "train_model", {**BASE, "target": "meta", "xgboost": {"n_estimators": 30},
                                             "wait_seconds": 300})
    summary = answer["result"]
    assert summary["target"] == "meta" and summary["verdict"]["summary"]
    report = await read_json(mcp, summary["resources"]["report"])
    plain = [m for m in (await call(mcp, "list_models", {}))["result"] if m["model_id"] != summary["model_id"]]
    assert report["labels"]["target"] == "meta"
    counts = report["label_counts"]
    assert counts["HOLD"] > counts["BUY"] and counts["HOLD"] > counts["SELL"]  # half the barrier calls drop out
    assert plain  # beside the barrier-labelled models of this module
    run = await call(mcp, "run_backtest", {"model_id": summary["model_id"], "edge": "implied", "wait_seconds": 120})
    assert run["status"] == "succeeded"


async def test_a_return_forecast_is_a_regression_judged_on_direction_and_r2(mcp: Client, settings: Settings):
    """target='return': XGBoost regresses the clipped forward return in barrier widths; its out-of-sample rows are
    three-point probabilities with P(BUY) − P(SELL) the forecast, scored by R² against forecasting no move, IC and
    the sign's hit rate; the verdict judges those."""
    import pandas as pd

    summary = (await call(mcp, "train_model", {**BASE, "target": "return", "xgboost": {"n_estimators": 30},
                                               "wait_seconds": 300}))["result"]
    assert summary["target"] == "return"
    oos = summary["out_of_sample"]
    assert oos["r2"] is not None and oos["ic"] is not None and oos["hit_rate"] is not None
    assert f"R² {oos['r2']:.4f}" in summary["verdict"]["summary"]
    if summary["verdict"]["beats_baselines"]:
        assert oos["r2"] > 0 and oos["hit_rate"] > 0.5
    report = await read_json(mcp, summary["resources"]["report"])
    assert report["labels"]["target"] == "return" and all(f["model"]["r2"] is not None for f in report["folds"])
    frame = pd.read_parquet(settings.models_dir / summary["model_id"] / "oos_predictions.parquet")
    z = frame["p_buy"] - frame["p_sell"]
    assert len(frame) == sum(f["test_rows"] for f in report["folds"])
    assert (z.abs() <= 1).all() and ((frame["p_buy"] == 0) | (frame["p_sell"] == 0)).all()
    assert np.allclose(frame["p_hold"], 1 - z.abs())
    assert (np.sign(z) != 0).mean() > 0.99  # a regressor has a side on almost every row


BAD_INPUT = [
    pytest.param({"kind": "forest"}, "kind", ["xgboost"], id="unknown-kind"),
    pytest.param({"target": "regression"}, "target", ["barrier", "meta", "return"], id="unknown-target"),
    pytest.param({"kind": "lstm", "target": "return"}, "target", ["'return' (regression) is for kind xgboost"],
                 id="return-target-for-an-lstm"),
    pytest.param({"horizon": 0}, "horizon", ["greater than or equal to 1"], id="horizon-0"),
    pytest.param({"horizon": -3}, "horizon", ["greater than or equal to 1"], id="horizon-negative"),
    pytest.param({"days": 10, "folds": 8}, "days", ["720 bars", "more days"], id="shorter-than-a-feature-window"),
    pytest.param({"days": 35, "folds": 20}, "days", ["20 walk-forward folds", "embargo of 24", "horizon"],
                 id="too-little-data-for-the-folds"),
    pytest.param({"embargo": 5}, "embargo", ["shorter than the horizon (24)"], id="embargo-below-horizon"),
    pytest.param({"xgboost": {"n_estimators": 0}}, "n_estimators", ["greater than or equal to 1"],
                 id="bad-learner-setting"),
    pytest.param({"symbols": ["BTC/USDT"]}, "symbols", ["at least two symbols"], id="one-symbol"),
    pytest.param({"device": "cuda"}, "device", ["no CUDA"], id="cuda-without-cuda"),
]


@pytest.mark.parametrize(("args", "field", "words"), BAD_INPUT)
async def test_bad_input_is_a_tool_error_naming_the_field(mcp: Client, args: dict, field: str, words: list[str]):
    if args.get("device") == "cuda" and has_cuda():  # checked here: importing torch at collection is slow
        pytest.skip("the case is device=cuda on a machine without CUDA, and this machine has CUDA")
    text = await error_of(mcp, "train_model", {**BASE, **RUNS["xgboost"], **args})
    assert field in text, text
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    await call(mcp, "list_models", {})  # the server keeps serving


@pytest.mark.parametrize("tool", ["get_job", "cancel_job"])
async def test_unknown_job_ids_are_tool_errors(mcp: Client, tool: str):
    text = await error_of(mcp, tool, {"job_id": "job-nope"})
    assert "no job 'job-nope'" in text and "trader://jobs" in text
    assert (await read_json(mcp, "trader://jobs"))["jobs"] is not None  # still serving

