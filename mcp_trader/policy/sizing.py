"""The size of an entry, the one formula of backtest, paper and live: risk × equity lost at a stop_atr × ATR stop,
times the share of the expected move left after costs (mcp_trader.backtest.edge), cut to the notional one order
may have and to the room left under the leverage cap. Plain numpy arithmetic, so that the cost gate sizes whole
arrays with it, and compiled for the kernel."""

import numpy as np
from numba import njit


def entry_size(risk_per_trade: float, stop_atr: float, max_order_notional: float, equity, atr, fraction, price,
               room):
    """Base units; `room`: gross notional still allowed (max_leverage × equity − what stays open); ≤ 0: none.
    Scalars or arrays alike."""
    size = risk_per_trade * equity / (stop_atr * atr) * fraction
    return np.minimum(np.minimum(size, max_order_notional / price), room / price)


compiled_entry_size = njit(cache=True, nogil=True)(entry_size)
