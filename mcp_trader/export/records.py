"""The export's contract: the certificate an ONNX export records, and its one-line listing. Plain pydantic, so
the tool's contract loads at server start without numpy, onnx or torch."""

from typing import Literal

from pydantic import BaseModel, Field

PARITY_THRESHOLD = 0.001  # most relative difference ONNX Runtime may show against the native model: 0.1 %
RECORD_FILE = "export.json"  # the certificate, in the export's folder

Part = Literal["xgboost", "lstm"]


class ExportRequest(BaseModel):
    model_id: str
    kind: Literal["xgboost", "lstm", "ensemble"] | None = Field(
        None, description="What to export: the model's own kind (default), or one part of an ensemble.")
    check_parity: bool = Field(True, description="Compare ONNX Runtime with the native model on held-out rows.")
    threshold: float = Field(PARITY_THRESHOLD, gt=0, le=PARITY_THRESHOLD,
                             description="Most relative difference accepted; only ever stricter than 0.1 %.")


class FileHash(BaseModel):
    name: str
    sha256: str
    bytes: int


class TensorSpec(BaseModel):
    name: str
    dtype: str
    shape: list[int | str] = Field(description="'batch' is the dynamic axis.")


class InputSchema(BaseModel):
    tensor: TensorSpec
    features: list[str] = Field(description="Feature columns, in the order the model reads them.")
    seq_len: int | None = Field(None, description="LSTM: bars in each window, the last one being the row's bar.")
    presence_channel: int | None = Field(
        None, description="LSTM: index of the last channel, 1 where the bar had a candle and 0 in padding or gaps.")
    missing: str = Field(description="How missing values (NaN) are treated.")
    preprocessing: str = Field(description="What the predictor does before the ONNX graph runs.")


class OnnxPart(BaseModel):
    part: Part
    file: str
    input: InputSchema
    outputs: list[TensorSpec]
    opset: dict[str, int] = Field(description="Operator set per domain ('' is the default ONNX domain).")
    exporter: str
    temperature: float = Field(description="Calibration temperature, applied inside the graph: softmax(logits / T).")
    return_std: float | None = Field(None, description="LSTM: the return head's scale, applied inside the graph.")
    scaling_file: str | None = Field(None, description="LSTM: the training rows' feature mean and std (JSON).")


class ParityFigure(BaseModel):
    output: str
    max_relative_diff: float = Field(description="max |onnx − native| / max(|native|, floor).")
    max_absolute_diff: float
    relative_floor: float = Field(description="Denominator floor: values nearer 0 are judged on this scale.")


class HeldOut(BaseModel):
    rows: int = Field(description="Rows compared.")
    fold: int = Field(description="The walk-forward fold whose test rows they are (the last).")
    start: str
    end: str
    feature_set_id: str
    note: str


class Parity(BaseModel):
    held_out: HeldOut
    threshold: float
    max_relative_diff: float = Field(description="The largest over every output below.")
    max_absolute_diff: float
    passed: bool
    outputs: list[ParityFigure]
    native_device: str
    providers: list[str]


class Timing(BaseModel):
    p50_ms: float
    p99_ms: float
    runs: int


class LatencyCase(BaseModel):
    rows: int
    native: Timing
    onnxruntime: Timing
    speedup_p50: float = Field(description="Native p50 / ONNX Runtime p50: above 1 means ONNX Runtime is faster.")


class Latency(BaseModel):
    single_row: LatencyCase
    batch: LatencyCase
    native_device: str
    providers: list[str]
    measured: str


class Providers(BaseModel):
    available: list[str] = Field(description="onnxruntime.get_available_providers() on the exporting machine.")
    used: list[str] = Field(description="What the sessions run on, preferred first.")


class ExportRecord(BaseModel):
    """The certificate: what was exported, how to feed it, and how closely and how fast it reproduces the model."""

    id: str
    created_at: str
    model_id: str
    model_kind: str
    kind: str = Field(description="What the export computes: the model's kind, or one part of an ensemble.")
    variant: str
    timeframe: str
    symbols: list[str]
    feature_set_id: str
    trained_until: str | None
    parts: list[OnnxPart]
    xgboost_weight: float | None = Field(None, description="Ensemble: P = w · P(xgboost) + (1 − w) · P(lstm).")
    outputs: list[str] = Field(description="What the predictor returns: predict_proba (n, 3) SELL/HOLD/BUY, "
                                           "and predict_return where an LSTM is part of it.")
    files: list[FileHash]
    validated: bool
    parity: Parity | None = Field(description="None when the export was not validated.")
    latency: Latency | None = Field(description="None when the export was not validated.")
    providers: Providers
    versions: dict[str, str]
    seconds: float
    notes: list[str]
    resources: dict[str, str]


class ExportListing(BaseModel):
    export_id: str
    created_at: str
    model_id: str
    kind: str
    validated: bool
    parity_passed: bool | None
    max_relative_diff: float | None
    uri: str

    @classmethod
    def of(cls, r: ExportRecord) -> "ExportListing":
        return cls(
            export_id=r.id, created_at=r.created_at, model_id=r.model_id, kind=r.kind, validated=r.validated,
            parity_passed=r.parity.passed if r.parity else None,
            max_relative_diff=r.parity.max_relative_diff if r.parity else None, uri=f"trader://exports/{r.id}",
        )
