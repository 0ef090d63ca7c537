"""ONNX export's core, offline on the bundled sample: each kind exports within 0.1 % of its native model on its
held-out rows, the certificate says how, the predictor serves it without torch, and a failed check keeps nothing.

One home for the module: an XGBoost model, an LSTM and an ensemble are trained once, small, and exported once.
"""

import dataclasses
import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from mcp_trader.config import Settings
from mcp_trader.errors import InputError, NotFoundError
from mcp_trader.export.exporter import export_model
from mcp_trader.export.heldout import held_out
from mcp_trader.export.parity import ParityError
from mcp_trader.export.predictor import OnnxPredictor, choose_providers
from mcp_trader.export.records import PARITY_THRESHOLD, ExportRecord, ExportRequest
from mcp_trader.home import Home
from mcp_trader.models.params import LSTMParams, XGBParams
from mcp_trader.models.training import TrainRequest, load_learner, train

pytestmark = pytest.mark.anyio

BASE = {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "days": 120, "as_of": "2024-09-30", "folds": 2,
        "device": "cpu"}
# a slow learning rate keeps early stopping from ending at the first round: the graph has trees to get wrong
XGB = XGBParams(n_estimators=40, learning_rate=0.02, early_stopping_rounds=40)
LSTM = LSTMParams(hidden=8, layers=1, seq_len=8, epochs=1, samples_per_epoch=256, batch_size=64)
KINDS = ("xgboost", "lstm", "ensemble")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def home(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Home]:
    home = Home(Settings(home=tmp_path_factory.mktemp("export") / "home", offline=True))
    yield home
    await home.close()


@pytest.fixture(scope="module")
async def models(home: Home) -> dict[str, str]:
    return {kind: (await train(home, TrainRequest(kind=kind, xgboost=XGB, lstm=LSTM, **BASE))).id for kind in KINDS}


@pytest.fixture(scope="module")
async def exported(home: Home, models: dict[str, str]) -> dict[str, ExportRecord]:
    return {kind: await export_model(home, ExportRequest(model_id=models[kind])) for kind in KINDS}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def rows_and_native(home: Home, model_id: str, limit: int = 400):
    registry = await home.models()
    record = await registry.record(model_id)
    held = await held_out(home, record, registry.folder(model_id), limit)
    return held, load_learner(record.kind, registry.folder(model_id), "cpu"), record


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_exports_within_parity(home: Home, models: dict, exported: dict, kind: str):
    cert = exported[kind]
    assert cert.model_id == models[kind] and cert.kind == cert.model_kind == kind and cert.validated
    parity = cert.parity
    assert parity.passed and parity.threshold == PARITY_THRESHOLD == 0.001
    assert parity.max_relative_diff < 1e-3 and parity.held_out.rows > 100 and parity.held_out.fold == 2
    expected = {"xgboost": ["probabilities"], "lstm": ["probabilities", "return"],
                "ensemble": ["probabilities", "xgboost.probabilities", "lstm.probabilities", "return"]}[kind]
    assert [f.output for f in parity.outputs] == expected
    assert all(f.max_relative_diff < 1e-3 and f.max_absolute_diff < 1e-5 for f in parity.outputs)
    assert parity.max_relative_diff == max(f.max_relative_diff for f in parity.outputs)
    for case in (cert.latency.single_row, cert.latency.batch):
        for timing in (case.native, case.onnxruntime):
            assert 0 < timing.p50_ms <= timing.p99_ms and timing.runs >= 5
    assert cert.latency.single_row.rows == 1 and cert.latency.batch.rows == min(1000, parity.held_out.rows)
    assert cert.providers.used == ["CPUExecutionProvider"] or "CUDAExecutionProvider" in cert.providers.used
    assert {"onnx", "onnxruntime"} <= set(cert.versions) and ("torch" in cert.versions) == (kind != "xgboost")
    assert cert.resources["certificate"] == f"trader://exports/{cert.id}"


async def test_the_certificate_matches_the_files_and_the_model(home: Home, exported: dict):
    import onnx

    store = await home.exports()
    for kind, cert in exported.items():
        folder = store.folder(cert.id)
        assert (await store.record(cert.id)) == cert
        assert ExportRecord.model_validate_json((folder / "export.json").read_text()) == cert
        assert {f.name for f in cert.files} == {p.name for p in folder.iterdir()} - {"export.json"}
        for f in cert.files:
            assert f.sha256 == sha256(folder / f.name) and f.bytes == (folder / f.name).stat().st_size
        model = json.loads((home.settings.models_dir / cert.model_id / "model.json").read_text())
        assert [p.part for p in cert.parts] == {"ensemble": ["xgboost", "lstm"]}.get(kind, [kind])
        for part in cert.parts:
            assert part.input.features == model["features"] and part.input.tensor.dtype == "float32"
            graph = onnx.load(folder / part.file)
            assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
            assert part.opset[""] == 18 and part.temperature > 0
            if part.part == "lstm":
                n = len(model["features"])
                assert part.input.seq_len == 8 and part.input.presence_channel == n
                assert part.input.tensor.shape == ["batch", 8, n + 1] and part.scaling_file == "lstm_scaling.json"
                assert [o.name for o in part.outputs] == ["probabilities", "return"]
            else:
                assert part.opset["ai.onnx.ml"] == 3 and part.input.tensor.shape == ["batch", len(model["features"])]
    assert exported["ensemble"].xgboost_weight is not None and exported["xgboost"].xgboost_weight is None


@pytest.mark.parametrize("kind", KINDS)
async def test_the_published_predictor_reproduces_the_native_model(home: Home, exported: dict, kind: str):
    cert = exported[kind]
    held, native, _ = await rows_and_native(home, cert.model_id)
    predictor = OnnxPredictor.load(home.settings.exports_dir, cert.id)
    assert predictor.providers[-1] == "CPUExecutionProvider"
    expected, got = native.predict_proba(held.data, held.rows), predictor.predict_proba(held.data, held.rows)
    assert got.shape == (len(held.rows), 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    for rows in (held.rows[:1], held.rows[:37], held.rows[:0]):  # the batch axis is dynamic
        assert predictor.predict_proba(held.data, rows).shape == (len(rows), 3)
    if kind == "lstm":
        np.testing.assert_allclose(predictor.predict_return(held.data, held.rows),
                                   native.predict_return(held.data, held.rows), rtol=1e-3, atol=1e-7)


async def test_missing_values_take_the_native_branch(home: Home, exported: dict):
    """NaN means missing to XGBoost: the graph must route it as the booster does, wherever it appears."""
    cert = exported["xgboost"]
    held, native, _ = await rows_and_native(home, cert.model_id)
    x = held.data.X.copy()
    holes = np.random.default_rng(3).random(x.shape) < 0.3
    x[holes] = np.nan
    data = dataclasses.replace(held.data, X=x)
    predictor = OnnxPredictor.load(home.settings.exports_dir, cert.id)
    np.testing.assert_allclose(predictor.predict_proba(data, held.rows), native.predict_proba(data, held.rows),
                               rtol=1e-4, atol=1e-7)


async def test_one_part_of_an_ensemble_exports_alone(home: Home, models: dict):
    cert = await export_model(home, ExportRequest(model_id=models["ensemble"], kind="lstm"))
    assert cert.kind == "lstm" and cert.model_kind == "ensemble" and [p.part for p in cert.parts] == ["lstm"]
    assert cert.xgboost_weight is None and cert.parity.passed
    held, native, _ = await rows_and_native(home, models["ensemble"])
    predictor = OnnxPredictor.load(home.settings.exports_dir, cert.id)
    np.testing.assert_allclose(predictor.predict_proba(held.data, held.rows),
                               native.lstm.predict_proba(held.data, held.rows), rtol=1e-4, atol=1e-7)


async def test_kinds_a_model_lacks_or_that_do_not_exist_are_refused(home: Home, models: dict):
    with pytest.raises(InputError) as error:
        await export_model(home, ExportRequest(model_id=models["xgboost"], kind="lstm"))
    assert error.value.field == "kind" and "no lstm part" in str(error.value) and "xgboost" in error.value.accepted
    with pytest.raises(InputError) as error:
        await export_model(home, ExportRequest(model_id=models["lstm"], kind="ensemble"))
    assert error.value.field == "kind"
    with pytest.raises(ValidationError, match="kind"):
        ExportRequest(model_id=models["xgboost"], kind="forest")
    with pytest.raises(NotFoundError, match="mdl-nope"):
        await export_model(home, ExportRequest(model_id="mdl-nope"))
    with pytest.raises(ValidationError, match="threshold"):  # no argument can loosen the check
        ExportRequest(model_id=models["xgboost"], threshold=0.01)
    with pytest.raises(NotFoundError, match="exp-nope"):
        OnnxPredictor.load(home.settings.exports_dir, "exp-nope")


async def exports_now(home: Home) -> tuple[set[str], int]:
    folders = {p.name for p in home.settings.exports_dir.iterdir()}
    (row,) = await (await home.db()).fetch_all("SELECT COUNT(*) AS n FROM exports")
    return folders, row["n"]


@pytest.mark.parametrize("kind", ["xgboost", "ensemble"])
async def test_a_failed_parity_check_is_refused_with_its_figure_and_keeps_nothing(home: Home, models: dict,
                                                                                  exported: dict, kind: str):
    before = await exports_now(home)
    with pytest.raises(ParityError) as error:  # a threshold no float32 graph meets: the check must refuse it
        await export_model(home, ExportRequest(model_id=models[kind], threshold=1e-12))
    failure = error.value
    assert isinstance(failure, InputError) and failure.field == "model_id"
    worst = max(f.max_relative_diff for f in failure.figures)
    assert worst > 1e-12 and f"{worst:.3g}" in str(failure) and models[kind] in str(failure)
    assert "nothing was exported" in str(failure) and failure.rows > 100
    assert await exports_now(home) == before  # no folder, no staging folder, no row


async def test_an_unvalidated_export_says_so(home: Home, models: dict):
    cert = await export_model(home, ExportRequest(model_id=models["xgboost"], check_parity=False))
    assert cert.validated is False and cert.parity is None and cert.latency is None
    assert any("NOT VALIDATED" in n for n in cert.notes)
    assert (home.settings.exports_dir / cert.id / "xgboost.onnx").exists()


def test_providers_prefer_tensorrt_then_cuda_and_end_on_the_cpu():
    cpu = "CPUExecutionProvider"
    assert choose_providers([cpu]) == [cpu]
    assert choose_providers(["AzureExecutionProvider", cpu]) == [cpu]
    assert choose_providers([cpu, "CUDAExecutionProvider"]) == ["CUDAExecutionProvider", cpu]
    assert choose_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider", cpu]) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", cpu]
    assert choose_providers() == choose_providers(__import__("onnxruntime").get_available_providers())


PREDICT_WITHOUT_TORCH = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path

    from mcp_trader.config import Settings
    from mcp_trader.export.heldout import held_out
    from mcp_trader.export.predictor import OnnxPredictor
    from mcp_trader.home import Home

    async def main(home_dir, export_id, model_id):
        home = Home(Settings(home=Path(home_dir), offline=True))
        try:
            registry = await home.models()
            record = await registry.record(model_id)
            held = await held_out(home, record, registry.folder(model_id), 50)
            predictor = OnnxPredictor.load(home.settings.exports_dir, export_id)
            proba = predictor.predict_proba(held.data, held.rows)
            ret = predictor.predict_return(held.data, held.rows)
        finally:
            await home.close()
        heavy = sorted(m for m in ("torch", "xgboost", "onnxmltools", "onnxscript") if m in sys.modules)
        print(json.dumps({"shape": list(proba.shape), "returns": len(ret), "heavy": heavy}))

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_the_predictor_serves_an_lstm_export_without_torch(home: Home, exported: dict):
    for kind in ("lstm", "ensemble"):
        cert = exported[kind]
        out = subprocess.run([sys.executable, "-c", PREDICT_WITHOUT_TORCH, str(home.settings.home_dir), cert.id,
                              cert.model_id], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout.strip().splitlines()[-1])
        assert answer == {"shape": [50, 3], "returns": 50, "heavy": []}, answer
