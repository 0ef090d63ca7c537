"""export_onnx's core: a trained model → ONNX graphs → parity on held-out rows → latency → the export store.

The graphs are written to a staging folder and checked there by the very predictor that will serve them; a
failed parity check raises ParityError with the figures and keeps nothing. Only a passing (or, asked for,
unvalidated) export is moved into <home>/exports/<export_id>/ and indexed.
"""

import asyncio
import hashlib
import json
import platform
import secrets
import shutil
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

from mcp_trader import __version__
from mcp_trader.errors import InputError
from mcp_trader.export import convert
from mcp_trader.export.heldout import HeldOutRows, held_out
from mcp_trader.export.latency import case
from mcp_trader.export.parity import ParityError, measure
from mcp_trader.export.predictor import OnnxPredictor, available_providers
from mcp_trader.export.records import (
    ExportRecord,
    ExportRequest,
    FileHash,
    HeldOut,
    InputSchema,
    Latency,
    OnnxPart,
    Parity,
    Part,
    Providers,
    TensorSpec,
)
from mcp_trader.models.base import CLASSES, Report, silent
from mcp_trader.models.records import ModelRecord
from mcp_trader.store.files import write_atomically
from mcp_trader.timefmt import iso_z, now_iso

if TYPE_CHECKING:
    from mcp_trader.home import Home

PARTS: dict[str, tuple[Part, ...]] = {"xgboost": ("xgboost",), "lstm": ("lstm",), "ensemble": ("xgboost", "lstm")}
MAX_PARITY_ROWS = 2000  # plenty for parity; the default LSTM on a small CPU scores about 800 rows/s
BATCH_ROWS = 1000
SINGLE_RUNS, BATCH_RUNS = 200, 30
BUDGET_S = 2.0  # per side and case: a large LSTM on a small CPU still exports in seconds
NATIVE_DEVICE = "cpu"  # the reference: deterministic, and what cheap CPU inference replaces
HELD_OUT_NOTE = ("the model's last walk-forward test block, scored out of sample during evaluation; the kept model "
                 "was then refitted on every labelled row, these included, so they are held out from the "
                 "conversion, not from training: parity compares two implementations of one model on real rows")


async def check_request(home: "Home", request: ExportRequest) -> tuple[ModelRecord, str]:
    """The model's record and the kind to export, or the error a tool shows before starting a job."""
    record = await (await home.models()).record(request.model_id)
    return record, kind_to_export(record, request.kind)


def kind_to_export(record: ModelRecord, asked: str | None) -> str:
    kind = asked or record.kind
    if kind not in PARTS:
        raise InputError("kind", f"{kind!r} is not a model kind", ", ".join(PARTS))
    if not set(PARTS[kind]) <= set(PARTS[record.kind]):
        accepted = [record.kind, *(p for p in PARTS[record.kind] if p != record.kind)]
        raise InputError("kind", f"model {record.id} is an {record.kind} model, with no {kind} part to export",
                         ", ".join(accepted) + ", or leave kind out")
    return kind


async def export_model(home: "Home", request: ExportRequest, report: Report = silent) -> ExportRecord:
    started = perf_counter()
    record, kind = await check_request(home, request)
    model_folder = (await home.models()).folder(record.id)
    report(0.02, f"loading model {record.id}")
    native = await asyncio.to_thread(_native, record, model_folder, kind)
    held = None
    if request.check_parity:
        report(0.05, "rebuilding the held-out rows from the stored feature set")
        held = await held_out(home, record, model_folder, MAX_PARITY_ROWS)
    store = await home.exports()
    export_id = f"exp-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    staging = store.staging(export_id)
    try:
        result = await asyncio.to_thread(
            _export, request, record, kind, native, held, staging, export_id, report, started)
        await store.publish(result, staging)
    finally:
        if staging.exists():
            await asyncio.to_thread(shutil.rmtree, staging, True)
    report(1.0, "done")
    return result


def _native(record: ModelRecord, folder: Path, kind: str):
    from mcp_trader.models.training import load_learner

    learner = load_learner(record.kind, folder, NATIVE_DEVICE)
    return getattr(learner, kind) if kind != record.kind else learner


def _export(request: ExportRequest, record: ModelRecord, kind: str, native, held: HeldOutRows | None,
            staging: Path, export_id: str, report: Report, started: float) -> ExportRecord:
    parts = []
    for i, part in enumerate(PARTS[kind]):
        report(0.1 + 0.4 * i / len(PARTS[kind]), f"converting the {part} part to ONNX")
        parts.append(_write_part(part, native if kind != "ensemble" else getattr(native, part), record, staging))
    weight = native.weight if kind == "ensemble" else None
    predictor = OnnxPredictor(staging, parts, kind, weight)
    parity = latency = None
    if held is not None:
        report(0.55, f"parity on {len(held.rows)} held-out rows")
        parity = _parity(request, record, native, predictor, held)
        report(0.7, "latency: native vs ONNX Runtime, one row and a batch")
        latency = _latency(native, predictor, held)
    return ExportRecord(
        id=export_id, created_at=now_iso(), model_id=record.id, model_kind=record.kind, kind=kind,
        variant=record.variant, timeframe=record.timeframe, symbols=record.symbols,
        feature_set_id=record.feature_set_id, trained_until=record.trained_until, parts=parts,
        xgboost_weight=weight, outputs=_outputs(kind, record.labels.target), files=_hashes(staging),
        validated=held is not None,
        parity=parity, latency=latency,
        providers=Providers(available=available_providers(), used=predictor.used_providers),
        versions=_versions(kind), seconds=round(perf_counter() - started, 3), notes=_notes(record, held),
        resources={"certificate": f"trader://exports/{export_id}", "model": f"trader://models/{record.id}"},
    )


def _write_part(part: Part, learner, record: ModelRecord, staging: Path) -> OnnxPart:
    metadata = {"model_id": record.id, "part": part, "features": record.features, "classes": list(CLASSES),
                "temperature": learner.temperature}
    if part == "xgboost":
        if learner.booster.num_features() != len(record.features):
            raise InputError("model_id", f"model {record.id}'s booster reads {learner.booster.num_features()} "
                             f"features, its record lists {len(record.features)}", "an intact model")
        model = convert.xgboost_to_onnx(learner.booster, learner.temperature, metadata, learner.regression)
    else:
        model = convert.lstm_to_onnx(learner, metadata)
    file = f"{part}.onnx"
    write_atomically(staging / file, lambda tmp: tmp.write_bytes(model.SerializeToString()))
    if part == "xgboost":
        return _xgboost_part(file, model, learner, record)
    return _lstm_part(file, model, learner, record, staging)


def _xgboost_part(file: str, model, learner, record: ModelRecord) -> OnnxPart:
    n = len(record.features)
    return OnnxPart(
        part="xgboost", file=file, opset=convert.opsets(model), exporter=convert.xgboost_exporter(learner.regression),
        temperature=learner.temperature,
        input=InputSchema(
            tensor=TensorSpec(name=convert.XGB_INPUT, dtype="float32", shape=[convert.BATCH, n]),
            features=record.features,
            missing="NaN means missing: each tree sends it down the branch the native booster does",
            preprocessing="none: each row's feature values as float32, columns in `features` order",
        ),
        outputs=[TensorSpec(name=convert.PROBABILITIES, dtype="float32", shape=[convert.BATCH, len(CLASSES)])],
    )


def _lstm_part(file: str, model, learner, record: ModelRecord, staging: Path) -> OnnxPart:
    n, seq_len = len(record.features), learner.params.seq_len
    scaling = {"features": record.features, "seq_len": seq_len, "mean": learner.mean.tolist(),
               "std": learner.std.tolist()}
    write_atomically(staging / "lstm_scaling.json", lambda tmp: tmp.write_text(json.dumps(scaling)))
    return OnnxPart(
        part="lstm", file=file, opset=convert.opsets(model), exporter=convert.lstm_exporter(),
        temperature=learner.temperature, return_std=learner.return_std, scaling_file="lstm_scaling.json",
        input=InputSchema(
            tensor=TensorSpec(name=convert.LSTM_INPUT, dtype="float32", shape=[convert.BATCH, seq_len, n + 1]),
            features=record.features, seq_len=seq_len, presence_channel=n,
            missing="NaN and ±inf become 0 after scaling (the training mean); bars with no candle, and the front "
                    "padding, are all 0 with presence 0",
            preprocessing="mcp_trader.models.sequences, as the native learner: (x − mean) / std with the training "
                          "rows' mean and std (lstm_scaling.json), the cube front-padded by seq_len − 1 empty bars, "
                          "each row's window the seq_len bars ending at its bar, presence channel last",
        ),
        outputs=[TensorSpec(name=convert.PROBABILITIES, dtype="float32", shape=[convert.BATCH, len(CLASSES)]),
                 TensorSpec(name=convert.RETURN, dtype="float32", shape=[convert.BATCH])],
    )


def _parity(request: ExportRequest, record: ModelRecord, native, predictor: OnnxPredictor,
            held: HeldOutRows) -> Parity:
    figures = measure(native, predictor, held.data, held.rows)
    worst_rel = max(f.max_relative_diff for f in figures)
    if not worst_rel < request.threshold:
        raise ParityError(record.id, figures, len(held.rows), request.threshold)
    return Parity(
        held_out=HeldOut(rows=len(held.rows), fold=held.fold, start=iso_z(held.start), end=iso_z(held.end),
                         feature_set_id=record.feature_set_id, note=HELD_OUT_NOTE),
        threshold=request.threshold, max_relative_diff=worst_rel,
        max_absolute_diff=max(f.max_absolute_diff for f in figures), passed=True, outputs=figures,
        native_device=NATIVE_DEVICE, providers=predictor.used_providers,
    )


def _latency(native, predictor: OnnxPredictor, held: HeldOutRows) -> Latency:
    data, rows = held.data, held.rows
    return Latency(
        single_row=case(native.predict_proba, predictor.predict_proba, data, rows, 1, SINGLE_RUNS, BUDGET_S),
        batch=case(native.predict_proba, predictor.predict_proba, data, rows, min(BATCH_ROWS, len(rows)),
                   BATCH_RUNS, BUDGET_S),
        native_device=NATIVE_DEVICE, providers=predictor.used_providers,
        measured="predict_proba end to end on held-out rows (inputs assembled, model run, calibrated "
                 "probabilities out), after one warm-up call each; milliseconds of wall-clock time",
    )


def _outputs(kind: str, target: str) -> list[str]:
    if target == "return":
        return ["predict_proba(data, rows) → (n, 3) float64, SELL/HOLD/BUY: the return forecast z (forward return "
                "in barrier widths, within ±1) as three-point probabilities, P(BUY) − P(SELL) = z"]
    outputs = ["predict_proba(data, rows) → (n, 3) float64, SELL/HOLD/BUY calibrated probabilities"]
    if kind != "xgboost":
        outputs.append("predict_return(data, rows) → (n,) float64, forward log return over the label horizon")
    return outputs


def _hashes(folder: Path) -> list[FileHash]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return [FileHash(name=p.name, sha256=hashlib.sha256(p.read_bytes()).hexdigest(), bytes=p.stat().st_size)
            for p in files]


def _versions(kind: str) -> dict[str, str]:
    packages = ["numpy", "onnx", "onnxruntime"]
    if kind != "lstm":
        packages += ["xgboost", "onnxmltools"]
    if kind != "xgboost":
        packages += ["torch", "onnxscript"]
    return {"mcp-trader": __version__, "python": platform.python_version(), **{p: version(p) for p in packages}}


def _notes(record: ModelRecord, held: HeldOutRows | None) -> list[str]:
    notes = []
    if held is None:
        notes.append("NOT VALIDATED (validate=false): no parity check and no latency were measured; the graphs are "
                     "unchecked against the native model")
    if record.synthetic:
        notes.append("the model was trained on SYNTHETIC data: its signals say nothing about real markets")
    return notes


