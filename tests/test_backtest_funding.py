"""Funding on the backtest grid, from the bundled Binance USDⓈ-M history: settlements land in the bar that
contains them, and what is not known is said, per symbol."""

import numpy as np
import pandas as pd
import pytest

from mcp_trader.backtest.funding import funding_grid, history


def grid(start: str, periods: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz="UTC").as_unit("ms")


def test_hourly_bars_carry_each_settlement_at_its_open():
    index = grid("2024-03-01", 48, "1h")
    rates, coverage = funding_grid(["BTC/USDT:USDT"], index, "1h")
    btc = history("BTC")
    settled = btc[(btc.index >= index[0].value // 10**6) & (btc.index < index[-1].value // 10**6 + 3_600_000)]
    assert len(settled) == 6  # 00:00, 08:00 and 16:00 on two days
    hours = np.flatnonzero(rates[:, 0])
    assert list(index[hours].hour) == [0, 8, 16, 0, 8, 16]
    assert rates[hours, 0].tolist() == settled.tolist()
    assert coverage[0].applied and coverage[0].settlements == 6 and coverage[0].note is None


def test_a_daily_bar_sums_its_three_settlements():
    index = grid("2024-03-01", 5, "1D")
    rates, _ = funding_grid(["ETH/USDT:USDT"], index, "1d")
    eth = history("ETH")
    first_day = eth[(eth.index >= index[0].value // 10**6) & (eth.index < index[1].value // 10**6)]
    assert len(first_day) == 3
    assert rates[0, 0] == pytest.approx(first_day.sum(), rel=1e-12)


def test_what_is_not_known_is_not_charged_and_said():
    index = grid("2022-12-20", 24 * 30, "1h")  # BNB's funding file starts 2023-01-01
    rates, coverage = funding_grid(["BNB/USDT:USDT", "DOT/USDT:USDT", "BTC/USDT"], index, "1h")
    bnb, dot, spot = coverage
    assert bnb.applied and "starts 2023-01-01" in bnb.note
    assert not rates[index < pd.Timestamp("2023-01-01", tz="UTC"), 0].any() and rates[:, 0].any()
    assert not dot.applied and "no funding history" in dot.note and not rates[:, 1].any()
    assert not spot.applied and spot.note == "spot: no funding" and not rates[:, 2].any()
