"""Feature core: TA-Lib parity on real candles, gap handling, hand-computed cases, spec checks, stable output."""

import math

import numpy as np
import pandas as pd
import pytest
import talib

from mcp_trader.data import candles
from mcp_trader.data.sources.sample import load
from mcp_trader.data.sources.synthetic import _asset_frame
from mcp_trader.errors import InputError
from mcp_trader.features import builder, confluence, indicators
from mcp_trader.features.panel import align, segments
from mcp_trader.features.rolling import min_count, rolling_corr, rolling_mean, rolling_mean_std
from mcp_trader.features.spec import make_spec

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
GAP_FREE = slice(8000, 10000)  # bars of the sample with no missing candle (2021-11 to 2022-02)
SPEC = make_spec("1h")  # 24h, 7d, 30d: 24, 168 and 720 bars


def sample(assets, rows=GAP_FREE):
    return {f"{a}/USDT": load(a).iloc[rows] for a in assets}


def synthetic(assets, n, seed=7):
    return {f"{a}/USDT": _asset_frame(seed, a, n) for a in assets}


def hand_frame(rows):
    """Candles from (open, high, low, close, volume) rows, one an hour from T0."""
    return candles.from_rows([[T0 + i * H, *r] for i, r in enumerate(rows)])


def log_return(close):
    return np.concatenate(([np.nan], np.log(close[1:] / close[:-1])))


def first_value(values):
    return int(np.flatnonzero(~np.isnan(values))[0])


# --- TA-Lib parity on real, gap-free candles ------------------------------------------------------------------


@pytest.fixture(scope="module")
def gap_free():
    panel = align(sample(("BTC", "ETH", "SOL")), "1h")
    assert panel.present.all() and panel.shape == (2000, 3)
    return panel, builder.compute_arrays(panel, SPEC, "BTC/USDT")


def test_talib_indicators_equal_talib(gap_free):
    panel, arrays = gap_free
    for j in range(panel.shape[1]):
        high, low, close = panel.high[:, j], panel.low[:, j], panel.close[:, j]
        macd, signal, hist = talib.MACD(close, 12, 26, 9)
        upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)
        expected = {
            "rsi_14": talib.RSI(close, 14),
            "macd_pct": macd / close,
            "macd_signal_pct": signal / close,
            "macd_hist_pct": hist / close,
            "bb_pctb": (close - lower) / (upper - lower),
            "bb_width": (upper - lower) / middle,
            "natr_14": talib.NATR(high, low, close, 14),
        }
        assert set(expected) == set(indicators.TALIB_COLUMNS)
        for name, values in expected.items():
            assert np.array_equal(arrays[name][:, j], values, equal_nan=True), (panel.symbols[j], name)
            assert not np.isnan(values[-1000:]).any()


def test_returns_equal_talib_rocp(gap_free):
    panel, arrays = gap_free
    for j in range(panel.shape[1]):
        close = panel.close[:, j]
        for window, bars in {"1": 1, **SPEC.bars}.items():
            assert np.array_equal(arrays[f"ret_{window}"][:, j], talib.ROCP(close, bars), equal_nan=True), window


def test_rolling_statistics_match_talib(gap_free):
    panel, arrays = gap_free
    for j in range(panel.shape[1]):
        close, volume = panel.close[:, j], panel.volume[:, j]
        log_ret, log_volume = log_return(close), np.log1p(volume)
        for window, bars in SPEC.bars.items():
            rvol, z = arrays[f"rvol_{window}"][:, j], arrays[f"volume_z_{window}"][:, j]
            expected_rvol = talib.STDDEV(log_ret, bars)
            expected_z = (log_volume - talib.SMA(log_volume, bars)) / talib.STDDEV(log_volume, bars)
            # TA-Lib waits for a full window (its STDDEV of the returns one bar more: the first return is NaN);
            # ours gives a value once 80 % of the window is present.
            assert first_value(expected_rvol) == bars and first_value(rvol) == min_count(bars)
            assert first_value(expected_z) == bars - 1 and first_value(z) == min_count(bars) - 1
            full = ~np.isnan(expected_rvol)
            np.testing.assert_allclose(rvol[full], expected_rvol[full], rtol=1e-7, atol=0)
            full = ~np.isnan(expected_z)
            np.testing.assert_allclose(z[full], expected_z[full], rtol=1e-7, atol=1e-12)
        expected = np.log1p(talib.SMA(close * volume, SPEC.bars[SPEC.shortest]))
        full = ~np.isnan(expected)
        np.testing.assert_allclose(arrays["log_dollar_volume"][full, j], expected[full], rtol=1e-7, atol=0)


# --- gaps and late listings ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gapped():
    """BTC gap-free; ETH misses 5 bars; SOL starts 100 bars late and misses 2 bars later on."""
    frames = sample(("BTC", "ETH", "SOL"), slice(8000, 9500))
    eth = frames["ETH/USDT"]
    frames["ETH/USDT"] = eth.drop(eth.index[600:605])
    sol = frames["SOL/USDT"].iloc[100:]
    frames["SOL/USDT"] = sol.drop(sol.index[50:52])
    panel = align(frames, "1h")
    return frames, panel, builder.compute_arrays(panel, SPEC, "BTC/USDT"), builder.build(panel, SPEC, "BTC/USDT")


def test_gap_restarts_talib_indicators(gapped):
    _, panel, arrays, _ = gapped
    eth = panel.column("ETH/USDT")
    assert segments(panel.present[:, eth]) == [(0, 600), (605, 1500)]
    high, low, close = panel.high[:, eth], panel.low[:, eth], panel.close[:, eth]
    for a, b in ((0, 600), (605, 1500)):
        run = indicators._talib_run(high[a:b], low[a:b], close[a:b])
        expected = dict(zip(indicators.TALIB_COLUMNS, run, strict=True))
        assert np.array_equal(expected["rsi_14"], talib.RSI(close[a:b], 14), equal_nan=True)
        assert np.array_equal(expected["natr_14"], talib.NATR(high[a:b], low[a:b], close[a:b], 14), equal_nan=True)
        for name, values in expected.items():
            assert np.array_equal(arrays[name][a:b, eth], values, equal_nan=True), name
    # warm-up after the gap: NaN again, as at the very start
    assert np.isnan(arrays["rsi_14"][605:619, eth]).all() and not np.isnan(arrays["rsi_14"][619, eth])
    assert np.isnan(arrays["macd_signal_pct"][605:638, eth]).all() and not np.isnan(arrays["macd_signal_pct"][638, eth])
    assert np.isnan(arrays["natr_14"][605:619, eth]).all() and not np.isnan(arrays["natr_14"][619, eth])
    # other assets are untouched by ETH's gap
    btc = panel.column("BTC/USDT")
    assert np.array_equal(arrays["rsi_14"][:, btc], talib.RSI(panel.close[:, btc], 14), equal_nan=True)


def test_gap_never_gives_a_return_across_it(gapped):
    _, panel, arrays, _ = gapped
    eth = panel.column("ETH/USDT")
    assert np.isnan(arrays["ret_1"][600:606, eth]).all()
    assert not np.isnan(arrays["ret_1"][599, eth]) and not np.isnan(arrays["ret_1"][606, eth])
    # a return over n bars exists exactly when both ends have a candle
    ret = arrays["ret_24h"][:, eth]
    both = panel.present[24:, eth] & panel.present[:-24, eth]
    assert np.array_equal(~np.isnan(ret[24:]), both)
    # the gap-aware rolling statistics skip the missing bars: pandas with the 80 % rule gives the same
    log_ret = pd.Series(log_return(panel.close[:, eth]))
    for window, bars in SPEC.bars.items():
        expected = log_ret.rolling(bars, min_periods=min_count(bars)).std(ddof=0).to_numpy()
        got = arrays[f"rvol_{window}"][:, eth]
        assert np.array_equal(np.isnan(got), np.isnan(expected)), window
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-12)
    # 24h: 5 missing bars and the first return after them leave 18 < 20 returns in the window
    assert np.isnan(arrays["rvol_24h"][605, eth]) and not np.isnan(arrays["rvol_7d"][605, eth])


def test_rows_exist_only_for_candles(gapped):
    frames, panel, _, table = gapped
    frame = table.frame
    assert len(frame) == int(panel.present.sum())
    for symbol, candle_frame in frames.items():
        rows = frame.xs(symbol, level="symbol")
        assert rows.index.equals(candle_frame.index), symbol
    eth_times = frame.xs("ETH/USDT", level="symbol").index
    assert not eth_times.isin(frames["BTC/USDT"].index[600:605]).any()
    assert np.isnan(frame.xs("ETH/USDT", level="symbol")["ret_1"].loc[frames["BTC/USDT"].index[605]])


def test_late_listing_age_and_history(gapped):
    frames, _, _, table = gapped
    sol = table.frame.xs("SOL/USDT", level="symbol")
    assert sol.index[0] == frames["SOL/USDT"].index[0] == frames["BTC/USDT"].index[100]
    # listing_age counts grid bars since the first candle (the 2 missing bars included), history_bars candles
    hours = ((sol.index - sol.index[0]) // pd.Timedelta(hours=1)).to_numpy().astype(float)
    assert np.array_equal(sol["listing_age"].to_numpy(), hours)
    assert np.array_equal(sol["history_bars"].to_numpy(), np.arange(1, len(sol) + 1, dtype=float))
    assert sol["listing_age"].iloc[:3].tolist() == [0.0, 1.0, 2.0]
    assert sol["listing_age"].iloc[50] == 52.0 and sol["history_bars"].iloc[50] == 51.0
    btc = table.frame.xs("BTC/USDT", level="symbol")
    assert btc["listing_age"].iloc[0] == 0.0 and btc["history_bars"].iloc[-1] == len(btc)


# --- rolling kernels by hand ----------------------------------------------------------------------------------


def test_min_count_is_80_percent_and_at_least_3():
    assert [min_count(n) for n in (3, 4, 5, 10, 24, 168, 720)] == [3, 4, 4, 8, 20, 135, 576]


def test_rolling_mean_std_by_hand():
    x = np.array([1.0, 2.0, np.nan, 4.0, 8.0, 16.0, 32.0])
    mean, std = rolling_mean_std(x, 5)  # needs 4 of 5 present
    assert mean.shape == std.shape == x.shape
    assert np.isnan(mean[:4]).all() and np.isnan(std[:4]).all()  # 1, 2, 2, 3 values present
    for t, window in ((4, [1, 2, 4, 8]), (5, [2, 4, 8, 16]), (6, [4, 8, 16, 32])):
        assert mean[t] == pytest.approx(np.mean(window), rel=1e-12)
        assert std[t] == pytest.approx(np.std(window), rel=1e-12)
    assert mean[4] == 3.75 and std[4] == pytest.approx(math.sqrt(7.1875), rel=1e-12)
    # a second missing value in the window drops coverage to 3 of 5: no statistic
    y = np.array([1.0, 2.0, np.nan, 4.0, np.nan, 16.0, 32.0, 64.0])
    mean = rolling_mean(y, 5)
    assert np.isnan(mean[:7]).all() and mean[7] == pytest.approx(np.mean([4, 16, 32, 64]))
    # columns are independent; a flat column has a standard deviation of exactly zero
    two = np.column_stack([x, np.full(7, 5.0)])
    mean2, std2 = rolling_mean_std(two, 5)
    assert np.array_equal(mean2[:, 0], rolling_mean_std(x, 5)[0], equal_nan=True)
    assert np.array_equal(std2[4:, 1], np.zeros(3)) and np.array_equal(mean2[4:, 1], np.full(3, 5.0))


def test_rolling_corr_by_hand():
    x = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])
    y = np.array([[1.0], [3.0], [2.0], [np.nan], [5.0], [4.0]])
    corr = rolling_corr(x, y, 5)[:, 0]  # needs 4 complete pairs of 5
    assert np.isnan(corr[:4]).all()  # at bar 3 only 3 complete pairs
    assert corr[4] == pytest.approx(np.corrcoef([1, 2, 3, 5], [1, 3, 2, 5])[0, 1], rel=1e-12)
    assert corr[5] == pytest.approx(np.corrcoef([2, 3, 5, 6], [3, 2, 5, 4])[0, 1], rel=1e-12)
    line = np.arange(10.0)[:, None]
    assert rolling_corr(line, 3 * line + 1, 4)[3:, 0] == pytest.approx(np.ones(7))
    assert rolling_corr(line, -line, 4)[3:, 0] == pytest.approx(-np.ones(7))
    assert np.isnan(rolling_corr(line, np.ones((10, 1)), 4)).all()  # no variance, no correlation
    # xcol / ycol pick the pairs: (x0, y1) and (x1, y0)
    xy = np.column_stack([line[:, 0], line[:, 0] ** 2])
    pairs = rolling_corr(xy, xy, 4, np.array([0, 1]), np.array([1, 0]))
    assert pairs.shape == (10, 2) and np.array_equal(pairs[:, 0], pairs[:, 1], equal_nan=True)
    assert pairs[9, 0] == pytest.approx(np.corrcoef(line[6:, 0], line[6:, 0] ** 2)[0, 1], rel=1e-12)


# --- confluence -----------------------------------------------------------------------------------------------


def test_agreement_by_hand():
    nan = np.nan
    states = np.array([[1, 1, -1, nan], [0, 0, 0, 0], [1, nan, nan, nan], [-1, 1, 0, -1]])
    expected = np.array([[0.5, 0.5, 0.0, nan], [1, 1, 1, 1], [nan, nan, nan, nan], [1 / 3, 0, 0, 1 / 3]])
    assert np.allclose(confluence.agreement(states), expected, equal_nan=True)


@pytest.fixture(scope="module")
def market():
    """Four synthetic assets, 24h window only; DOGE misses 10 bars."""
    frames = synthetic(("BTC", "ETH", "SOL", "DOGE"), 300)
    doge = frames["DOGE/USDT"]
    frames["DOGE/USDT"] = doge.drop(doge.index[150:160])
    panel = align(frames, "1h")
    spec = make_spec("1h", ["24h"])
    returns = pd.DataFrame(indicators.log_returns(panel), columns=panel.symbols)
    return panel, spec, returns, builder.compute_arrays(panel, spec, "BTC/USDT")


def test_corr_mkt_is_leave_one_out(market):
    panel, _, returns, arrays = market
    for j, symbol in enumerate(panel.symbols):
        others = returns.drop(columns=symbol).mean(axis=1)  # equal weight of the other assets present at t
        expected = returns[symbol].rolling(24, min_periods=min_count(24)).corr(others).to_numpy()
        got = arrays["corr_mkt_24h"][:, j]
        assert np.array_equal(np.isnan(got), np.isnan(expected)), symbol
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        # including the asset itself in the market gives a different (higher) correlation
        with_self = returns[symbol].rolling(24).corr(returns.mean(axis=1)).to_numpy()
        assert np.nanmean(with_self - got) > 0.01


def test_corr_btc_and_corr_mean(market):
    panel, _, returns, arrays = market
    btc = panel.column("BTC/USDT")
    assert np.isnan(arrays["corr_btc_24h"][:, btc]).all()  # BTC against itself is left out, not a constant 1
    gap_free = returns.iloc[:150]
    pairs = {
        (a, b): gap_free[a].rolling(24).corr(gap_free[b]).to_numpy()
        for a in panel.symbols for b in panel.symbols if a != b
    }
    for j, symbol in enumerate(panel.symbols):
        expected = np.mean([c for (a, _), c in pairs.items() if a == symbol], axis=0)
        np.testing.assert_allclose(arrays["corr_mean_24h"][25:150, j], expected[25:], rtol=1e-9, atol=1e-12)
        expected_btc = pairs[(symbol, "BTC/USDT")] if symbol != "BTC/USDT" else np.full(150, np.nan)
        np.testing.assert_allclose(arrays["corr_btc_24h"][25:150, j], expected_btc[25:], rtol=1e-9, atol=1e-12)


def test_confluence_scores_by_hand():
    nan = np.nan
    spec = make_spec("1h", ["24h"])
    # bar 0: A all bullish, B mixed, C all bearish; bar 1: A lacks RSI and %B, B has %B at exactly 0.5, C absent
    single = {
        "rsi_14": np.array([[70, 60, 30], [nan, 55, nan]]),
        "macd_hist_pct": np.array([[0.01, -0.01, -0.02], [0.01, 0.02, nan]]),
        "bb_pctb": np.array([[0.9, 0.7, 0.1], [nan, 0.5, nan]]),
        "ret_24h": np.array([[0.05, -0.02, -0.03], [0.01, 0.02, nan]]),
        "volume_z_24h": np.array([[2.5, 1.0, nan], [3.0, 2.0, nan]]),
    }
    returns = np.full((2, 3), nan)
    out = confluence.compute(single, returns, returns[:, 0], spec)
    assert set(out) == set(confluence.columns(spec))
    expected = {
        "volume_abnormal": [[1, 0, nan], [1, 0, nan]],  # z > 2, strictly
        "volume_confluence": [[0, 1, 0.5], [0, 1, 0.5]],  # share of the others with a value
        "align_rsi": [[0.5, 0.5, 0], [nan, nan, nan]],
        "align_macd": [[0, 0.5, 0.5], [1, 1, nan]],
        "align_bb": [[0.5, 0.5, 0], [nan, nan, nan]],
        "tech_alignment": [[1 / 3, 0.5, 1 / 6], [1, 1, nan]],
        "mom_align_24h": [[0, 0.5, 0.5], [1, 1, nan]],
        "mom_alignment": [[0, 0.5, 0.5], [1, 1, nan]],
        "direction": [[1, 0, -1], [1, 0.75, nan]],
        "alignment": [[0.25, 0.5, 0.25], [1, 1, nan]],
        "confluence_score": [[0.25, 0, -0.25], [1, 0.75, nan]],
        "corr_btc_24h": [[nan] * 3] * 2,
    }
    for name, values in expected.items():
        assert np.allclose(out[name], np.array(values, dtype=float), equal_nan=True), name


def test_volume_abnormal_on_a_panel(market):
    panel, _, _, arrays = market
    z = arrays["volume_z_24h"]
    assert np.array_equal(arrays["volume_abnormal"], np.where(np.isnan(z), np.nan, z > 2.0), equal_nan=True)
    flags = pd.DataFrame(arrays["volume_abnormal"], columns=panel.symbols)
    for j, symbol in enumerate(panel.symbols):
        expected = flags.drop(columns=symbol).mean(axis=1).to_numpy()
        assert np.allclose(arrays["volume_confluence"][:, j], expected, equal_nan=True)


# --- liquidity by hand ----------------------------------------------------------------------------------------


def test_amihud_and_spread_by_hand():
    spec = make_spec("1h", ["3h"])  # 3 bars, all 3 needed
    closes, volumes = [100.0, 110.0, 99.0, 99.0, 108.9], [1000.0, 2000.0, 1000.0, 500.0, 100.0]
    btc = hand_frame([(c, c * 1.01, c * 0.99, c, v) for c, v in zip(closes, volumes, strict=True)])
    # flat closes; the mid-range sqrt(high·low) sits d above the close (in logs), the range is ±3 %
    offsets = [0.01, 0.01, 0.02, 0.02, -0.02]
    flat = hand_frame([(50.0, 50 * math.exp(d + 0.03), 50 * math.exp(d - 0.03), 50.0, 10.0) for d in offsets])
    arrays = builder.compute_arrays(align({"BTC/USDT": btc, "X/USDT": flat}, "1h"), spec, "BTC/USDT")

    # Amihud: mean of |return| / dollar volume, per $1M; returns 0.1, -0.1, 0, 0.1 at bars 1-4
    impact = [np.nan, 0.1 / 220_000 * 1e6, 0.1 / 99_000 * 1e6, 0.0, 0.1 / 10_890 * 1e6]
    amihud = arrays["amihud_3h"][:, 0]
    assert np.isnan(amihud[:3]).all()
    assert amihud[3] == pytest.approx(sum(impact[1:4]) / 3, rel=1e-9)
    assert amihud[4] == pytest.approx(sum(impact[2:5]) / 3, rel=1e-9)
    assert amihud[4] == pytest.approx((1e5 / 99_000 + 0 + 1e5 / 10_890) / 3, rel=1e-9)

    # Abdi–Ranaldo with flat closes: 4·(c₋₁ − η₋₁)(c₋₁ − η) = 4·d₋₁·d
    spread = arrays["spread_3h"][:, 1]
    terms = [4 * 0.01 * 0.01, 4 * 0.01 * 0.02, 4 * 0.02 * 0.02, 4 * 0.02 * -0.02]
    assert np.isnan(spread[:3]).all()
    assert spread[3] == pytest.approx(math.sqrt(sum(terms[:3]) / 3), rel=1e-9)
    assert spread[3] == pytest.approx(math.sqrt(28e-4 / 3), rel=1e-9)
    assert spread[4] == pytest.approx(math.sqrt((8e-4 + 16e-4 - 16e-4) / 3), rel=1e-9)
    # BTC: c = η every bar (high·low = c²·0.9999 → η = c + ½·log 0.9999), moving closes
    c, eta = np.log(closes), np.log(closes) + 0.5 * math.log(1.01 * 0.99)
    terms = [4 * (c[t - 1] - eta[t - 1]) * (c[t - 1] - eta[t]) for t in range(1, 5)]
    btc_spread = arrays["spread_3h"][:, 0]
    for t in (3, 4):
        window_mean = sum(terms[t - 3 : t]) / 3
        assert btc_spread[t] == pytest.approx(math.sqrt(max(window_mean, 0.0)), rel=1e-9, abs=1e-15)


def test_negative_spread_estimate_is_zero():
    spec = make_spec("1h", ["3h"])
    offsets = [0.01, -0.01, 0.01, -0.01, 0.01]  # mid-range alternates around a flat close: every term < 0
    rows = [(50.0, 50 * math.exp(d + 0.03), 50 * math.exp(d - 0.03), 50.0, 10.0) for d in offsets]
    arrays = builder.compute_arrays(align({"BTC/USDT": hand_frame(rows)}, "1h"), spec, "BTC/USDT")
    assert np.isnan(arrays["spread_3h"][:3, 0]).all() and np.array_equal(arrays["spread_3h"][3:, 0], [0.0, 0.0])


# --- spec -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeframe", "windows", "field"),
    [
        ("2h", None, "timeframe"),
        ("1m", None, "timeframe"),
        ("hourly", None, "timeframe"),
        ("1h", ["1x"], "windows"),
        ("1h", ["24 h"], "windows"),
        ("1h", ["1.5d"], "windows"),
        ("1h", ["d"], "windows"),
        ("1d", ["24h"], "windows"),  # 1 bar
        ("1d", ["2d"], "windows"),  # 2 bars < 3
        ("4h", ["6h"], "windows"),  # 1.5 bars
        ("4h", ["30h"], "windows"),  # 7.5 bars
        ("1h", ["2h"], "windows"),  # 2 bars < 3
        ("1h", ["24h", "1d"], "windows"),  # one length twice
        ("1h", ["7d", "1w"], "windows"),
        ("1h", ["7d", "7d"], "windows"),
        ("1h", [], "windows"),
        ("1h", ["3h", "6h", "12h", "24h", "48h"], "windows"),  # more than four
        ("1d", ["400d"], "windows"),  # longer than a year
    ],
)
def test_spec_rejects(timeframe, windows, field):
    with pytest.raises(InputError) as error:
        make_spec(timeframe, windows)
    assert error.value.field == field


def test_spec_defaults_and_order():
    assert make_spec("1h").bars == {"24h": 24, "7d": 168, "30d": 720}
    assert make_spec("4h").bars == {"24h": 6, "7d": 42, "30d": 180}
    assert make_spec("1d").bars == {"7d": 7, "30d": 30, "90d": 90}
    spec = make_spec("1h", ["30d", "3h", "1w"])
    assert spec.windows == ("3h", "1w", "30d") and spec.shortest == "3h" and spec.longest == "30d"
    assert spec.bars == {"3h": 3, "1w": 168, "30d": 720}
    assert make_spec("1d", ["3d"]).bars == {"3d": 3}


# --- stable output --------------------------------------------------------------------------------------------


def test_build_is_stable(gapped):
    frames, _, _, table = gapped
    again = builder.build(align(frames, "1h"), SPEC, "BTC/USDT")
    assert again.content_hash == table.content_hash
    assert again.frame.equals(table.frame)
    columns = builder.feature_columns(SPEC)
    assert list(table.frame.columns) == columns and len(set(columns)) == len(columns)
    assert columns[:4] == ["ret_1", "ret_24h", "ret_7d", "ret_30d"] and columns[-1] == "confluence_score"
    assert list(table.frame.index.names) == ["time", "symbol"]
    assert table.frame.index.get_level_values("time").is_monotonic_increasing
    assert all(table.frame.dtypes == np.float64)
    # one changed close changes the hash
    changed = dict(frames)
    eth = changed["ETH/USDT"].copy()
    eth.iloc[-1, eth.columns.get_loc("close")] *= 1.001
    changed["ETH/USDT"] = eth
    assert builder.build(align(changed, "1h"), SPEC, "BTC/USDT").content_hash != table.content_hash
