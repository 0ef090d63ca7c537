"""A strategy's trading rules: the risk limits and how its positions end; and the names of the exits. Plain data
(no numba), so that a tool can import it without loading the compiled kernel."""

from pydantic import BaseModel, Field

from mcp_trader.policy.limits import DEFAULT_TAKE_PROFIT_ATR, RiskLimits

SIGNAL, STOP, TAKE_PROFIT, TIME, END, RUIN = 0, 1, 2, 3, 4, 5  # exit reasons; -1: none
EXIT_REASONS = ("signal", "stop", "take_profit", "time", "end", "ruin")
NEVER = 2**40  # bars since the entry of an asset never entered


class Policy(BaseModel, frozen=True):
    """The rules a strategy trades by: the risk limits and how positions end."""

    limits: RiskLimits = RiskLimits()
    take_profit_atr: float = Field(DEFAULT_TAKE_PROFIT_ATR, ge=0, le=100, description="0 = none.")
    max_hold_bars: int = Field(0, ge=0, description="Exit after this many bars held; 0 = never.")
    min_hold_bars: int = Field(0, ge=0, description="An opposite signal exits, and an asset is entered again, only "
                                                    "after this many bars.")
    allow_short: bool = True

    def numbers(self) -> tuple[float, float, float, int, float, int, int, bool]:
        """The kernel's arguments after the per-bar arrays."""
        lim = self.limits
        return (lim.risk_per_trade, lim.stop_atr, lim.max_order_notional, lim.max_positions, lim.max_leverage,
                self.max_hold_bars, self.min_hold_bars, self.allow_short)

    def target_distance(self, stop_distance: float) -> float:
        """How far the take-profit sits from the fill, for an entry whose stop sits `stop_distance` away."""
        return stop_distance * self.take_profit_atr / self.limits.stop_atr
