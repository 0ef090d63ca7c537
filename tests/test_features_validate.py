"""The feature validation report, its charts and `mcp-trader features validate`, on the bundled sample."""

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sample_sets import offline_feature_set

from mcp_trader.errors import InputError
from mcp_trader.features import charts
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.features.validate import (
    FILES,
    ValidationReport,
    format_report,
    forward_returns,
    validation_report,
    write_report,
)

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]
HORIZON = 24
PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def fs(tmp_path_factory) -> FeatureSet:
    return offline_feature_set(tmp_path_factory.mktemp("home"), SYMBOLS, datetime(2024, 6, 1, tzinfo=UTC),
                               datetime(2024, 8, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def report(fs) -> ValidationReport:
    return validation_report(fs, HORIZON)


def forward_by_row(fs: FeatureSet, horizon: int) -> pd.Series:
    """The forward return of each frame row, computed independently of validate.py (pandas shift)."""
    close = pd.DataFrame(fs.panel.close, index=fs.panel.index, columns=list(fs.panel.symbols))
    fwd = (close.shift(-horizon) / close - 1).stack(future_stack=True)
    fwd.index.names = ["time", "symbol"]
    times = fs.frame.index.get_level_values("time")
    symbols = fs.frame.index.get_level_values("symbol").astype(str)
    return pd.Series(fwd.reindex(pd.MultiIndex.from_arrays([times, symbols])).to_numpy(), index=fs.frame.index)


def with_columns(fs: FeatureSet, **columns: pd.Series) -> FeatureSet:
    """The same feature set with extra columns on a copy of its frame (the original is left alone)."""
    frame = fs.frame.copy()
    for name, values in columns.items():
        frame[name] = values
    return dataclasses.replace(fs, frame=frame)


def test_report_describes_the_feature_set(fs, report):
    assert report.feature_set_id == fs.id and report.feature_set_id.startswith("fs-")
    assert report.rows == len(fs.frame) and report.symbols == list(fs.panel.symbols)
    assert report.synthetic is False and report.horizon == HORIZON and report.timeframe == "1h"
    assert report.windows == {"24h": 24, "7d": 168, "30d": 720}
    assert report.start.startswith("2024-06-01") and report.end.startswith("2024-08-01")
    assert [f.name for f in report.features] == list(fs.frame.columns)
    assert report.target_rows == int(forward_by_row(fs, HORIZON).notna().sum())
    assert report.rows - len(fs.panel.symbols) * HORIZON <= report.target_rows < report.rows
    assert any("evaluation only" in note for note in report.notes)


def test_report_statistics_are_in_range(fs, report):
    for f in report.features:
        assert 0.0 <= f.nan_rate <= 1.0 and 0.0 <= f.inf_rate <= 1.0, f.name
        assert f.nan_rate == pytest.approx(float(fs.frame[f.name].isna().mean()))
        assert f.min <= f.p1 <= f.p50 <= f.p99 <= f.max, f.name
        assert f.min <= f.mean <= f.max and f.std >= 0, f.name
        for ic in (f.ic_pooled, f.ic_mean):
            assert ic is None or -1.0 <= ic <= 1.0, f.name
        assert 0 < f.ic_pooled_rows <= report.target_rows
        assert 0 <= f.ic_times <= len(fs.panel.index) - HORIZON
    by_name = {f.name: f for f in report.features}
    assert by_name["confluence_score"].min >= -1 and by_name["confluence_score"].max <= 1
    assert by_name["rsi_14"].ic_times > 1000  # 4 assets: a cross-section at almost every bar


def spearman(table: pd.DataFrame) -> float:
    return table.corr(method="spearman").loc["x", "y"]  # DataFrame.corr ranks in pandas itself: no scipy


def test_pooled_and_cross_sectional_ic_match_pandas_spearman(fs, report):
    fwd = forward_by_row(fs, HORIZON)
    table = pd.DataFrame({"x": fs.frame["rsi_14"], "y": fwd}).dropna()
    got = {f.name: f for f in report.features}["rsi_14"]
    assert got.ic_pooled_rows == len(table)
    assert got.ic_pooled == pytest.approx(spearman(table), abs=1e-12)
    per_time = [spearman(g) for _, g in table.groupby(level="time") if len(g) >= 3]
    per_time = np.array([ic for ic in per_time if np.isfinite(ic)])
    assert got.ic_times == len(per_time)
    assert got.ic_mean == pytest.approx(per_time.mean(), abs=1e-12)
    assert got.ic_tstat == pytest.approx(per_time.mean() / per_time.std(ddof=1) * np.sqrt(len(per_time)), rel=1e-9)


def test_a_planted_forward_return_ranks_perfectly(fs):
    fwd = forward_by_row(fs, HORIZON)
    noise = np.random.default_rng(0).normal(0.0, float(fwd.std()), len(fwd))
    planted = with_columns(
        fs, planted=fwd, planted_convex=np.exp(40 * fwd), planted_negative=-fwd, planted_noisy=fwd + noise,
        pure_noise=pd.Series(noise, index=fwd.index),
    )
    stats = {f.name: f for f in validation_report(planted, HORIZON).features}
    assert "planted" not in fs.frame.columns  # the feature set itself is untouched
    assert stats["planted"].ic_pooled == pytest.approx(1.0, abs=1e-12)
    assert stats["planted"].ic_mean == pytest.approx(1.0, abs=1e-12)
    assert stats["planted_convex"].ic_pooled == pytest.approx(1.0, abs=1e-12)  # rank IC: any increasing map
    assert stats["planted_negative"].ic_pooled == pytest.approx(-1.0, abs=1e-12)
    assert 0.4 < stats["planted_noisy"].ic_pooled < 0.95 and stats["planted_noisy"].ic_tstat > 10
    assert abs(stats["pure_noise"].ic_pooled) < 0.05
    # a planted column knows the future; the real features do not come near it
    real = [f for f in stats.values() if f.name in fs.frame.columns and f.ic_pooled is not None]
    assert max(abs(f.ic_pooled) for f in real) < 0.5


def test_forward_returns_are_nan_across_missing_bars_and_at_the_end():
    close = np.array([[100.0], [110.0], [np.nan], [121.0], [133.1]])
    fwd = forward_returns(close, 1)
    assert fwd[0, 0] == pytest.approx(0.1) and fwd[3, 0] == pytest.approx(0.1)
    assert np.isnan(fwd[[1, 2, 4], 0]).all()
    assert np.isnan(forward_returns(close, 5)).all()


@pytest.mark.parametrize("horizon", [0, -3, 10_000, 2.5, True])
def test_bad_horizons_name_the_field(fs, horizon):
    with pytest.raises(InputError) as caught:
        validation_report(fs, horizon)
    assert caught.value.field == "horizon"


def test_write_report_writes_json_and_pngs(fs, report, tmp_path):
    out = tmp_path / "nested" / "report"
    paths = write_report(report, fs, out)
    assert [p.name for p in paths] == list(FILES) and all(p.parent == out for p in paths)
    assert ValidationReport.model_validate_json(paths[0].read_text()) == report
    assert json.loads(paths[0].read_text())["feature_set_id"] == fs.id
    for path in paths[1:]:
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporary files left behind
    assert "matplotlib.pyplot" not in sys.modules


def test_charts_cope_with_short_tables_and_empty_columns(fs):
    assert charts.confluence_heatmap(fs.frame, fs.spec, bars=10_000).startswith(PNG)
    assert charts.confluence_heatmap(fs.frame.tail(40), fs.spec, bars=24).startswith(PNG)
    empty = fs.frame.assign(nothing=np.nan, constant=1.0)
    assert charts.feature_distributions(empty, ["nothing", "constant", "ret_1"]).startswith(PNG)
    with pytest.raises(ValueError, match="not in the feature table"):
        charts.feature_distributions(fs.frame, ["no_such_feature"])


def test_format_report_sorts_by_absolute_pooled_ic(report):
    text = format_report(report)
    assert report.feature_set_id in text and "IC pooled" in text
    rows = [line.split()[0] for line in text.splitlines() if line.split() and line.split()[0] in
            {f.name for f in report.features}]
    by_name = {f.name: f for f in report.features}
    ics = [abs(by_name[name].ic_pooled) if by_name[name].ic_pooled is not None else -1 for name in rows]
    assert len(rows) == len(report.features) and ics == sorted(ics, reverse=True)


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MCP_TRADER_OFFLINE": "1"}
    env.pop("MCP_TRADER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "mcp_trader.server", "features", "validate", *args, "--home", str(home)],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )


@pytest.mark.slow
def test_cli_validates_and_writes_the_report(tmp_path):
    done = run_cli("--symbols", "BTC/USDT,ETH/USDT,SOL/USDT", "--start", "2024-06-01", "--as-of", "2024-08-01",
                   home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "IC pooled" in done.stdout and "confluence_score" in done.stdout and "evaluation only" in done.stdout
    written = [Path(line.strip()) for line in done.stdout.splitlines() if line.startswith("  /")]
    assert [p.name for p in written] == list(FILES)
    report = json.loads(written[0].read_text())
    assert written[0].parent == tmp_path / "reports" / f"features-{report['feature_set_id']}"
    assert report["symbols"] == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"] and report["horizon"] == 24
    assert all(p.read_bytes().startswith(PNG) for p in written[1:])


@pytest.mark.slow
@pytest.mark.parametrize(("args", "field"), [
    (["--timeframe", "2h"], "timeframe"),
    (["--start", "June"], "start"),
    (["--windows", "5x"], "windows"),
    (["--horizon", "0"], "horizon"),
    (["--symbols", "BTC/USDT"], "symbols"),
])
def test_cli_bad_input_exits_2_naming_the_field(tmp_path, args, field):
    done = run_cli(*args, home=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"error: {field}") and "Traceback" not in done.stderr
    assert done.stdout == "" and not (tmp_path / "reports").exists()
