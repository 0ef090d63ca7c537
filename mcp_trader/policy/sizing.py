"""The size of an entry, the one formula of backtest, paper and live: risk × equity lost at a stop_atr × ATR stop,
times the share of the expected move left after costs (mcp_trader.backtest.edge), cut to the notional one order
may have and to the room left under the leverage cap."""

from numba import njit


@njit(cache=True, nogil=True)
def entry_size(risk_per_trade: float, stop_atr: float, max_order_notional: float, equity: float, atr: float,
               fraction: float, price: float, room: float) -> float:
    """Base units; `room`: gross notional still allowed (max_leverage × equity − what stays open); ≤ 0: none."""
    size = risk_per_trade * equity / (stop_atr * atr) * fraction
    return min(size, max_order_notional / price, room / price)
