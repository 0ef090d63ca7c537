"""The backtest's settings: costs, risk overrides and exits, the bootstrap of its intervals; each with its default."""

from typing import Literal

from pydantic import BaseModel, Field

from mcp_trader.policy.limits import DEFAULT_TAKE_PROFIT_ATR, RiskLimits
from mcp_trader.policy.rules import Policy

Strategy = Literal["model", "confluence", "trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum"]
EdgeUse = Literal["validated", "implied"]  # a model's expected move: scaled by its validation, or as implied
DEFAULT_MARGIN = 0.5  # of the cost gate, a priori: the expected move must be 1.5 × the round trip; not fitted
ASTER_MAKER_FEE = 0.0001  # Aster perpetuals, per side
ASTER_TAKER_FEE = 0.00035


class Costs(BaseModel, frozen=True, extra="forbid"):
    """What a fill costs. Market orders (entries, signal and time exits, stops) pay the taker fee and slip;
    take-profits rest as limit orders, pay the maker fee and fill at their price."""

    maker_fee: float = Field(ASTER_MAKER_FEE, ge=0, lt=0.05, description="Fraction of notional, e.g. 0.0001 = 0.01 %.")
    taker_fee: float = Field(ASTER_TAKER_FEE, ge=0, lt=0.05, description="Fraction of notional.")
    slippage_bps: float = Field(2.0, ge=0, le=500, description="Fixed slippage of market fills, basis points.")
    impact: float = Field(
        0.5, ge=0, le=10,
        description="Square-root impact: a market fill also moves by impact × (ATR / price) × √(order notional / "
                    "the last bar's dollar volume), participation capped at 1. 0 turns it off.",
    )
    funding: bool = Field(True, description="Apply perpetual funding where its history is known.")


class Risk(BaseModel, frozen=True, extra="forbid"):
    """This run's risk rules: overrides of the server's risk limits (unset: the limit paper and live trade under,
    so the run is what they would have done) and how its positions end."""

    risk_per_trade: float | None = Field(None, gt=0, lt=1, description="Equity fraction lost if the stop is hit "
                                         "(0.01 = 1 %); default the server's (MCP_TRADER_LIMITS__RISK_PER_TRADE).")
    stop_atr: float | None = Field(None, gt=0, le=50, description="Stop distance in ATR(14) multiples from the fill; "
                                   "default the server's, 3: the default labels' barrier (σ × √24 ≈ 3 hourly ATRs).")
    take_profit_atr: float = Field(DEFAULT_TAKE_PROFIT_ATR, ge=0, le=100,
                                   description="Take-profit distance in ATR multiples; 0 = none.")
    max_positions: int | None = Field(None, ge=1, le=50, description="Open positions at once, all assets together; "
                                                                     "default the server's.")
    max_leverage: float | None = Field(None, gt=0, le=20, description="Gross notional at most this multiple of "
                                                                      "equity; default the server's.")
    max_order_notional: float | None = Field(None, gt=0, le=1e12, description="USDT notional of one order at most; "
                                                                              "default the server's.")
    daily_loss_limit: float | None = Field(None, gt=0, lt=1, description="A UTC day's loss (fraction of its "
                                           "starting equity) that halts new entries until the next day; default "
                                           "the server's.")
    max_hold_bars: int | None = Field(
        None, ge=0, le=100_000, description="Exit after this many bars; 0 = never; default the model's horizon (24)."
    )
    allow_short: bool = Field(True, description="SELL signals open shorts; when false they only close longs.")
    min_hold_bars: int | None = Field(
        None, ge=0, le=100_000, description="An opposite signal exits only after this many bars held; default 0 for "
                                            "a model, the shortest feature window (24 bars on 1h) for confluence.")

    def limits(self, server: RiskLimits) -> RiskLimits:
        """The server's limits with this run's overrides."""
        given = {name: value for name in RiskLimits.model_fields if (value := getattr(self, name)) is not None}
        return server.model_copy(update=given)

    def policy(self, server: RiskLimits, max_hold_bars: int, min_hold_bars: int) -> Policy:
        """The run's policy, its holding limit and minimum hold resolved by the caller (they depend on the model or
        the rule)."""
        return Policy(limits=self.limits(server), take_profit_atr=self.take_profit_atr, max_hold_bars=max_hold_bars,
                      min_hold_bars=min_hold_bars, allow_short=self.allow_short)


class Bootstrap(BaseModel, frozen=True, extra="forbid"):
    """The stationary block bootstrap behind a run's intervals."""

    samples: int = Field(1000, ge=100, le=20_000, description="Resampled return paths.")
    seed: int = Field(7, ge=0, description="Seed of the resampling: the same seed gives the same intervals.")
    block_bars: float | None = Field(
        None, ge=1, le=100_000, description="Mean block length in bars; default Politis & White's automatic choice."
    )
    confidence: float = Field(0.95, ge=0.5, lt=1, description="Coverage of each interval.")
