"""Learner settings: plain pydantic models, importable without loading xgboost or torch."""

from pydantic import BaseModel, Field


class XGBParams(BaseModel, extra="forbid"):
    n_estimators: int = Field(400, ge=1, le=5000, description="Most boosting rounds; early stopping may end sooner.")
    max_depth: int = Field(6, ge=1, le=16, description="Deepest tree level.")
    learning_rate: float = Field(0.05, gt=0, le=1, description="Shrinkage per round (eta).")
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(5.0, ge=0)
    early_stopping_rounds: int = Field(30, ge=1, le=1000, description="Rounds without a better validation loss.")
    seed: int = Field(7, description="Seed of the row and column sampling.")


class LSTMParams(BaseModel, extra="forbid"):
    seq_len: int = Field(60, ge=2, le=500, description="Bars in each input sequence.")
    hidden: int = Field(256, ge=4, le=2048, description="LSTM hidden units per layer.")
    layers: int = Field(3, ge=1, le=8, description="Stacked LSTM layers.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout between layers and before the heads.")
    epochs: int = Field(10, ge=1, le=500, description="Most epochs; early stopping may end sooner.")
    patience: int = Field(2, ge=1, le=100, description="Epochs without a better validation loss before stopping.")
    batch_size: int = Field(256, ge=8, le=65536, description="Sequences per batch.")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate.")
    samples_per_epoch: int = Field(16384, ge=64, description="Training sequences drawn at random per epoch.")
    return_weight: float = Field(0.5, ge=0, le=100, description="Weight of the return loss next to the class loss.")
    seed: int = Field(7, description="Seed of the weights, dropout and sampling.")
