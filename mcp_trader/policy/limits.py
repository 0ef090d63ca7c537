"""The risk limits: one frozen type that the server's settings nest (MCP_TRADER_LIMITS__<NAME>), that the guard
checks every order against, and that a backtest runs under (its `risk` argument overrides them for that run)."""

from pydantic import BaseModel, Field

# Stop and take-profit at the width of the default labels' barriers, σ√24 of hourly log returns: an hourly ATR(14)
# is 1.63 σ (the bundled assets' median, measured on 2021-01..2022-09, before any span a benchmark reports), so the
# barrier is √24 / 1.63 ≈ 3.0 ATRs. A position then ends where the outcome its signal forecast is decided.
DEFAULT_STOP_ATR = 3.0
DEFAULT_TAKE_PROFIT_ATR = 3.0


class RiskLimits(BaseModel, frozen=True, extra="forbid"):
    risk_per_trade: float = Field(0.01, gt=0, lt=1, description="Equity fraction an entry loses if its stop is hit "
                                                                "(0.01 = 1 %).")
    stop_atr: float = Field(DEFAULT_STOP_ATR, gt=0, le=50, description="The stop distance, in ATR(14)s from the "
                            "fill, that risk is measured at; default 3, the default labels' barrier (σ√24).")
    max_positions: int = Field(5, ge=1, le=50, description="Open positions at once, all symbols together.")
    max_order_notional: float = Field(5_000.0, gt=0, description="USDT notional of one order at most.")
    max_leverage: float = Field(3.0, gt=0, le=20, description="Gross notional at most this multiple of equity.")
    daily_loss_limit: float = Field(
        0.05, gt=0, lt=1, description="A UTC day's loss (fraction of its starting equity) that halts new risk."
    )
