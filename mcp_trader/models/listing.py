"""One line per trained model: what list_models and trader://models show. Plain pydantic, so the tool's
contract loads at server start without numpy or pandas."""

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from mcp_trader.models.records import ModelRecord


class ModelListing(BaseModel):
    model_id: str
    created_at: str
    kind: str
    variant: str
    timeframe: str
    symbols: list[str]
    horizon: int
    synthetic: bool
    beats_baselines: bool
    log_loss: float = Field(description="Out of sample.")
    ic: float | None = Field(description="Out of sample, mean of the folds' ICs.")
    trained_until: str | None
    uri: str

    @classmethod
    def of(cls, r: "ModelRecord") -> "ModelListing":
        return cls(
            model_id=r.id, created_at=r.created_at, kind=r.kind, variant=r.variant, timeframe=r.timeframe,
            symbols=r.symbols, horizon=r.labels.horizon, synthetic=r.synthetic,
            beats_baselines=r.verdict.beats_baselines, log_loss=r.overall.log_loss, ic=r.overall.ic,
            trained_until=r.trained_until, uri=f"trader://models/{r.id}",
        )
