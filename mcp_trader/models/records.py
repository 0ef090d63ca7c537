"""The registry's contract: what a trained model records about how it was built and how it scored."""

from typing import Any

from pydantic import BaseModel, Field

from mcp_trader.features.models import FeatureInput
from mcp_trader.models.base import Variant
from mcp_trader.models.data import LabelSpec
from mcp_trader.models.edge import EdgeScale
from mcp_trader.models.metrics import Metrics


class Span(BaseModel):
    start: str | None
    end: str | None  # open time of the last bar in the span


class FoldReport(BaseModel):
    fold: int
    train: Span
    val: Span
    test: Span
    train_rows: int
    val_rows: int
    test_rows: int
    purged_rows: int = Field(description="Labelled rows left out of training by purging and the embargo.")
    model: Metrics
    baselines: dict[str, Metrics]
    fit: dict[str, Any]
    edge: EdgeScale | None = Field(None, description="The validated scale of the fold's expected moves.")


class Verdict(BaseModel):
    beats_baselines: bool
    summary: str


class WalkForward(BaseModel):
    folds: int
    scheme: str
    embargo: int = Field(description="Bars between the last training label and the first test bar.")
    test_share: float
    val_share: float


class Importance(BaseModel):
    feature: str
    gain: float = Field(description="Share of the total split gain.")
    shap: float = Field(description="Mean |SHAP contribution| on the last fold's test rows, summed over classes.")


class ModelRecord(BaseModel):
    id: str
    created_at: str
    kind: str
    variant: Variant
    timeframe: str
    symbols: list[str]
    labels: LabelSpec
    label_counts: dict[str, int]
    params: dict[str, Any]
    features: list[str] = Field(description="Model input columns, in order.")
    feature_set_id: str
    feature_set_hash: str
    input_hash: str
    inputs: list[FeatureInput]
    synthetic: bool
    walk_forward: WalkForward
    folds: list[FoldReport]
    overall: Metrics = Field(description="Every fold's test rows together: the out-of-sample score.")
    baselines: dict[str, Metrics]
    verdict: Verdict
    final_fit: dict[str, Any] = Field(description="The kept model, fitted on every labelled row after evaluation.")
    edge: EdgeScale | None = Field(None, description="The kept model's validated scale of its expected moves.")
    trained_until: str | None = Field(description="Open time of the last bar whose label the kept model saw.")
    importances: list[Importance] = Field(description="XGBoost's, most important first; empty for an LSTM.")
    device: str
    training_seconds: float
    versions: dict[str, str]
    artifacts: list[str]


class Headline(BaseModel):
    accuracy: float
    macro_f1: float
    log_loss: float
    hit_rate: float | None
    ic: float | None
    r2: float | None = None

    @classmethod
    def of(cls, m: Metrics) -> "Headline":
        return cls(accuracy=m.accuracy, macro_f1=m.macro_f1, log_loss=m.log_loss, hit_rate=m.hit_rate, ic=m.ic,
                   r2=m.r2)


class TrainingSummary(BaseModel):
    """What train_model answers: the verdict and headline out-of-sample figures; the full record is a resource."""

    model_id: str
    kind: str
    variant: str
    timeframe: str
    symbols: list[str]
    horizon: int
    target: str = Field("barrier", description="barrier (triple-barrier labels), meta (meta-labels) or return "
                                                "(forward-return regression).")
    synthetic: bool
    verdict: Verdict
    out_of_sample: Headline
    baselines: dict[str, Headline]
    folds: list[Headline]
    test_rows: int
    top_features: list[Importance]
    edge: EdgeScale | None = Field(description="The kept model's validated scale of its expected moves: 0 means its "
                                               "validation shows no direction skill beyond noise, and the cost gate "
                                               "keeps it flat.")
    fold_edges: list[float] = Field(description="Each fold's validated scale, applied to its test rows.")
    trained_until: str | None
    device: str
    training_seconds: float
    resources: dict[str, str]

    @classmethod
    def of(cls, r: ModelRecord) -> "TrainingSummary":
        uri = f"trader://models/{r.id}"
        return cls(
            model_id=r.id, kind=r.kind, variant=r.variant, timeframe=r.timeframe, symbols=r.symbols,
            horizon=r.labels.horizon, target=r.labels.target, synthetic=r.synthetic, verdict=r.verdict,
            out_of_sample=Headline.of(r.overall),
            baselines={k: Headline.of(v) for k, v in r.baselines.items()},
            folds=[Headline.of(f.model) for f in r.folds], test_rows=r.overall.rows, top_features=r.importances[:10],
            edge=r.edge, fold_edges=[f.edge.scale for f in r.folds if f.edge is not None],
            trained_until=r.trained_until, device=r.device, training_seconds=r.training_seconds,
            resources={"report": uri, "importances": f"{uri}/feature-importances.json",
                       "importances_chart": f"{uri}/feature-importances.png"},
        )

