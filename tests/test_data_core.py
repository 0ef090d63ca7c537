"""Quality checks, resampling, the synthetic generator and symbol parsing, on hand-made cases."""

import numpy as np
import pandas as pd
import pytest

from mcp_trader.data import candles
from mcp_trader.data.quality import check
from mcp_trader.data.resample import resample
from mcp_trader.data.sources.synthetic import _asset_frame
from mcp_trader.data.symbols import parse_symbol
from mcp_trader.errors import InputError

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


def frame(rows):
    return candles.from_rows([[T0 + i * H, *r] for i, r in rows])


def flat(n, price=100.0, volume=1.0):
    return [(i, (price, price, price, price, volume)) for i in range(n)]


def test_clean_data_reports_clean():
    repaired, report = check(frame(flat(48)), "1h")
    assert report.summary() == "clean" and report.rows == report.expected_rows == 48
    assert repaired.equals(frame(flat(48)))


def test_gap_is_reported_and_never_filled():
    rows = [r for r in flat(10) if r[0] not in (4, 5, 6)]
    repaired, report = check(frame(rows), "1h")
    assert report.gap_count == 1 and report.missing_bars == 3 and report.expected_rows == 10
    assert report.largest_gaps[0].start == "2024-01-01T04:00Z" and report.largest_gaps[0].end == "2024-01-01T06:00Z"
    assert len(repaired) == 7


def test_duplicates_keep_the_latest_fetch():
    rows = [*flat(5), (2, (101.0, 101.0, 101.0, 101.0, 9.0))]
    repaired, report = check(frame(rows), "1h")
    assert report.duplicates_removed == 1 and len(repaired) == 5
    assert repaired["close"].iloc[2] == 101.0


def test_inconsistent_high_low_are_widened():
    rows = [*flat(3), (3, (100.0, 99.0, 101.0, 102.0, 1.0))]  # high below low, close above high
    repaired, report = check(frame(rows), "1h")
    assert report.ohlc_repaired == 1
    assert repaired["high"].iloc[3] == 102.0 and repaired["low"].iloc[3] == 99.0


def test_non_positive_prices_are_removed_as_gaps():
    rows = [*flat(3), (3, (100.0, 100.0, 0.0, 100.0, 1.0)), (4, (100.0, 100.0, 100.0, 100.0, 1.0))]
    repaired, report = check(frame(rows), "1h")
    assert report.non_positive_removed == 1 and report.gap_count == 1 and len(repaired) == 4


def test_zero_volume_runs_are_counted():
    rows = flat(10)
    rows[3:7] = [(i, (100.0, 100.0, 100.0, 100.0, 0.0)) for i in range(3, 7)]
    rows[8] = (8, (100.0, 100.0, 100.0, 100.0, 0.0))
    _, report = check(frame(rows), "1h")
    assert report.zero_volume_bars == 5 and report.zero_volume_runs == 1


def test_spike_is_flagged():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 200)))
    closes[120] *= 1.5
    rows = [(i, (c, c, c, c, 1.0)) for i, c in enumerate(closes)]
    _, report = check(frame(rows), "1h")
    assert [s.time for s in report.spikes] == ["2024-01-06T00:00Z", "2024-01-06T01:00Z"]


def test_resample_hand_computed_and_drops_unfinished_bar():
    rows = [(i, (10.0 + i, 20.0 + i, 1.0 + i, 11.0 + i, 2.0)) for i in range(10)]
    bars, partial = resample(frame(rows), "1h", "4h")
    assert len(bars) == 2 and partial == 0  # hours 8-9 make an unfinished third bar
    first = bars.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (10, 23, 1, 14, 8)
    assert candles.to_ms(bars.index).tolist() == [T0, T0 + 4 * H]


def test_resample_counts_bars_built_from_a_partial_set():
    rows = [r for r in [(i, (1.0, 1.0, 1.0, 1.0, 1.0)) for i in range(12)] if r[0] != 5]
    bars, partial = resample(frame(rows), "1h", "4h")
    assert len(bars) == 3 and partial == 1 and bars["volume"].tolist() == [4.0, 3.0, 4.0]


def test_synthetic_has_fat_tails_clustering_correlation_and_volume_response():
    n = 20_000
    btc, eth = _asset_frame(7, "BTC", n), _asset_frame(7, "ETH", n)
    r_btc, r_eth = np.diff(np.log(btc["close"])), np.diff(np.log(eth["close"]))
    assert pd.Series(r_btc).kurt() > 3  # excess kurtosis: fatter than normal
    assert pd.Series(np.abs(r_btc)).autocorr(1) > 0.05  # volatility clustering
    assert 0.2 < np.corrcoef(r_btc, r_eth)[0, 1] < 0.9  # correlated, not identical
    quote_volume = (btc["volume"] * btc["close"]).to_numpy()[1:]
    ranks = pd.DataFrame({"move": np.abs(r_btc), "volume": quote_volume}).rank()
    assert ranks.corr().loc["move", "volume"] > 0.2  # Spearman correlation  # volume rises with |return|
    assert (btc[["open", "high", "low", "close"]] > 0).all().all()
    assert (btc["high"] >= btc[["open", "close"]].max(axis=1)).all()
    assert (btc["low"] <= btc[["open", "close"]].min(axis=1)).all()


def test_synthetic_is_seeded_and_window_independent():
    a, b = _asset_frame(7, "BTC", 5_000), _asset_frame(7, "BTC", 6_000)
    assert a.equals(b.iloc[:5_000])
    assert not a.equals(_asset_frame(8, "BTC", 5_000))


@pytest.mark.parametrize(
    ("text", "market", "unified"),
    [
        ("btc/usdt", "spot", "BTC/USDT"),
        ("BTC/USDT", "perp", "BTC/USDT:USDT"),
        ("ETH/USDT:USDT", "spot", "ETH/USDT:USDT"),
    ],
)
def test_symbols_parse_to_ccxt_unified_form(text, market, unified):
    assert parse_symbol(text, market).unified == unified


@pytest.mark.parametrize("text", ["BTCUSDT", "BTC/USDT:USDC", "BTC/EUR", "/USDT", "BTC/USDT/X"])
def test_bad_symbols_are_rejected_with_the_accepted_form(text):
    with pytest.raises(InputError, match="accepted"):
        parse_symbol(text, "spot")
