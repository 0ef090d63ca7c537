"""run_backtest's core: inputs → the engine → metrics and the buy-and-hold baseline → artifacts → the store."""

import asyncio
import json
import platform
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mcp_trader import __version__
from mcp_trader.backtest import metrics
from mcp_trader.backtest.baselines import RULES, buy_and_hold, rule_signals
from mcp_trader.backtest.charts import equity_chart
from mcp_trader.backtest.engine import EXIT_REASONS, Simulation, simulate, utc_days
from mcp_trader.backtest.forward import Forward, compare, figures
from mcp_trader.backtest.funding import SOURCE, SPOT, FundingCoverage, funding_grid, stored_funding
from mcp_trader.backtest.inputs import BacktestRequest, Inputs, build_inputs
from mcp_trader.backtest.intervals import Intervals, intervals
from mcp_trader.backtest.records import BacktestRecord, BaselineRun
from mcp_trader.models.base import Report, silent
from mcp_trader.store.files import write_atomically
from mcp_trader.timefmt import now_iso

if TYPE_CHECKING:
    from mcp_trader.home import Home


@dataclass(frozen=True)
class Outcome:
    simulation: Simulation
    funding: np.ndarray
    coverage: list[FundingCoverage]
    baseline: np.ndarray


async def run_backtest(home: "Home", request: BacktestRequest, report: Report = silent) -> BacktestRecord:
    started = perf_counter()
    report(0.0, "loading candles and signals")
    inputs = await build_inputs(home, request)
    reference = None
    if request.strategy == "model" and request.signals == "after_training":  # what to hold the run against
        walk_forward = request.model_copy(update={"signals": "out_of_sample", "start": None, "end": None,
                                                   "days": None})
        reference = (walk_forward, await build_inputs(home, walk_forward))
    fetched = await asyncio.to_thread(stored_funding, home.settings.funding_dir, list(inputs.panel.symbols))
    report(0.6, f"simulating {inputs.panel.shape[0]} bars × {inputs.panel.shape[1]} assets")
    store = await home.backtests()
    run_id = f"bt-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    staging = store.staging(run_id)
    try:
        record = await asyncio.to_thread(_run, request, inputs, run_id, staging, report, started, reference, fetched)
        await store.publish(record, staging)
    finally:
        if staging.exists():
            await asyncio.to_thread(shutil.rmtree, staging, True)
    report(1.0, "done")
    return record


def execute(inputs: Inputs, request: BacktestRequest, fetched: dict | None = None) -> Outcome:
    """The engine and the baseline on the inputs, with funding where it is known (`fetched`: the venues'
    settlements stored by collect_data, per symbol)."""
    panel = inputs.panel
    rates, coverage = funding_grid(list(panel.symbols), panel.index, panel.timeframe, fetched)
    simulation = simulate(
        panel.open, panel.high, panel.low, panel.close, panel.volume, inputs.signal, inputs.strength, inputs.atr,
        rates, request.capital, inputs.policy, request.costs, inputs.fraction, utc_days(panel.index),
    )
    baseline = buy_and_hold(panel.open, panel.close, rates, request.capital, request.costs)
    return Outcome(simulation, rates, coverage, baseline)


def baseline_runs(inputs: Inputs, request: BacktestRequest, rates: np.ndarray) -> list[BaselineRun]:
    """Flat and every baseline rule, traded by the engine on the run's span with its costs and risk rules."""
    panel, tf, capital = inputs.panel, inputs.panel.timeframe, request.capital
    per_year = metrics.bars_per_year(tf)
    days = len(panel.index) / per_year * 365.25
    flat = np.full(len(panel.index), capital)
    runs = [BaselineRun(strategy="flat", rule="no position", metrics=metrics.headline(flat, capital, tf),
                        intervals=None, trades=0, trades_per_day=0.0,
                        costs_paid=metrics.CostsPaid(fees=0.0, slippage=0.0, funding=0.0))]
    for name in RULES:  # on the traded assets alone: momentum ranks only them
        signal, strength, hold = rule_signals(name, inputs.history)
        signal, strength = signal[inputs.span], strength[inputs.span]
        policy = inputs.policy.model_copy(update={"max_hold_bars": request.risk.max_hold_bars or 0,
                                                  "min_hold_bars": hold})
        sim = simulate(panel.open, panel.high, panel.low, panel.close, panel.volume, signal, strength, inputs.atr,
                       rates, capital, policy, request.costs, day=utc_days(panel.index))
        paid = sim.trade("fees").sum(), sim.trade("slippage").sum(), -sim.trade("funding").sum()
        runs.append(BaselineRun(
            strategy=name, rule=RULES[name], metrics=metrics.headline(sim.equity, capital, tf),
            intervals=intervals(metrics.returns_of(sim.equity, capital), per_year, request.bootstrap),
            trades=len(sim.trades), trades_per_day=len(sim.trades) / days if days else 0.0,
            turnover=_turnover(sim, capital, days / 365.25),
            costs_paid=metrics.CostsPaid.of(float(paid[0]), float(paid[1]), float(paid[2]), sim.equity,
                                            days / 365.25),
        ))
    return runs


def forward_check(reference: tuple[BacktestRequest, Inputs], after: "metrics.Headline", spread: Intervals,
                  inputs: Inputs, trades: int, fetched: dict | None = None) -> Forward:
    """This after-training run against the same model's walk-forward out-of-sample run, same settings."""
    request, walk_forward = reference
    sim = execute(walk_forward, request, fetched).simulation
    per_year = metrics.bars_per_year(inputs.panel.timeframe)
    per_day = per_year / 365.25
    headline = metrics.headline(sim.equity, request.capital, inputs.panel.timeframe)
    before = figures(walk_forward.panel.index[0].isoformat(), walk_forward.panel.index[-1].isoformat(),
                     len(walk_forward.panel.index), per_day, headline,
                     intervals(metrics.returns_of(sim.equity, request.capital), per_year, request.bootstrap),
                     len(sim.trades))
    now = figures(inputs.panel.index[0].isoformat(), inputs.panel.index[-1].isoformat(), len(inputs.panel.index),
                  per_day, after, spread, trades)
    return compare(before, now, request.bootstrap.confidence)


def _run(request: BacktestRequest, inputs: Inputs, run_id: str, staging: Path, report: Report,
         started: float, reference: tuple[BacktestRequest, Inputs] | None = None,
         fetched: dict | None = None) -> BacktestRecord:
    outcome = execute(inputs, request, fetched)
    panel, sim, coverage = inputs.panel, outcome.simulation, outcome.coverage
    report(0.8, "metrics and charts")
    tf, capital = panel.timeframe, request.capital
    headline = metrics.headline(sim.equity, capital, tf)
    baseline = metrics.headline(outcome.baseline, capital, tf)
    per_year = metrics.bars_per_year(tf)
    spread = intervals(metrics.returns_of(sim.equity, capital), per_year, request.bootstrap)
    baseline_spread = intervals(metrics.returns_of(outcome.baseline, capital), per_year, request.bootstrap)
    trades = trade_table(inputs, sim)
    forward = forward_check(reference, headline, spread, inputs, len(trades), fetched) if reference else None
    beside = baseline_runs(inputs, request, outcome.funding)
    record = BacktestRecord(
        id=run_id, created_at=now_iso(), strategy=request.strategy, model_id=request.model_id,
        signals=inputs.described, request=request.model_dump(mode="json"), symbols=list(panel.symbols),
        universe=inputs.universe, timeframe=tf,
        start=panel.index[0].isoformat(), end=panel.index[-1].isoformat(), bars=len(panel.index), capital=capital,
        risk=request.risk, policy=inputs.policy, costs=request.costs, bootstrap=request.bootstrap,
        rule=inputs.rule,
        synthetic=inputs.synthetic, data=inputs.data, feature_set_id=inputs.feature_set_id,
        candles_hash=inputs.candles_hash(), signals_hash=inputs.signals_hash(), funding_source=SOURCE,
        funding=coverage if request.costs.funding else [c.model_copy(update={"applied": False, "note": "funding "
                                                         "turned off"}) for c in coverage],
        metrics=headline, intervals=spread, forward=forward,
        trades=metrics.trade_stats(trades["pnl"].to_numpy(), trades["bars_held"].to_numpy(),
                                   trades["exit_reason"].tolist(), sim.trade("side")),
        costs_paid=metrics.CostsPaid.of(float(trades["fees"].sum()), float(trades["slippage"].sum()),
                                        float(-trades["funding"].sum()), sim.equity,
                                        len(sim.equity) / metrics.bars_per_year(tf)),
        exposure=_exposure(sim, capital, tf), buy_and_hold=baseline, buy_and_hold_intervals=baseline_spread,
        baselines=beside,
        beats_buy_and_hold=headline.total_return > baseline.total_return,
        monthly_returns=metrics.monthly_returns(sim.equity, panel.index, capital),
        summary=_summary(inputs, headline, spread, baseline, len(trades)), notes=_notes(inputs, coverage, request),
        seconds=round(perf_counter() - started, 3), versions=_versions(),
        artifacts=["equity.json", "equity.png", "trades.csv", "run.json"],
    )
    _write_artifacts(staging, record, panel.index, sim, outcome.baseline, trades)
    return record


def trade_table(inputs: Inputs, sim: Simulation) -> pd.DataFrame:
    """One row per trade with times, prices and what it cost; bar numbers index the traded span."""
    index, symbols = inputs.panel.index, np.asarray(inputs.panel.symbols)

    def when(name: str) -> pd.Series:
        bars = sim.trade(name)
        return pd.Series([index[int(b)].isoformat() if b >= 0 else None for b in bars], dtype=object)

    entry, exit_ = sim.trade("entry_price"), sim.trade("exit_price")
    side, qty = sim.trade("side"), sim.trade("quantity")
    return pd.DataFrame({
        "symbol": symbols[sim.trade("asset").astype(int)] if len(sim.trades) else [],
        "side": np.where(side > 0, "long", "short"), "quantity": qty,
        "decision_time": when("decision_bar"), "entry_time": when("entry_bar"), "entry_price": entry,
        "exit_decision_time": when("exit_decision_bar"), "exit_time": when("exit_bar"), "exit_price": exit_,
        "exit_reason": [EXIT_REASONS[int(r)] for r in sim.trade("exit_reason")],
        "bars_held": sim.trade("exit_bar") - sim.trade("entry_bar") + 1,
        "stop_price": sim.trade("stop_price"), "take_profit_price": sim.trade("take_profit_price"),
        "fees": sim.trade("fees"), "slippage": sim.trade("slippage"), "funding": sim.trade("funding"),
        "pnl": sim.trade("pnl"), "return": side * (exit_ / entry - 1.0), "strength": sim.trade("strength"),
    })


def _exposure(sim: Simulation, capital: float, timeframe: str) -> metrics.Exposure:
    with np.errstate(invalid="ignore", divide="ignore"):
        leverage = np.where(sim.equity > 0, sim.gross / sim.equity, 0.0)
    return metrics.Exposure(
        time_in_market=float((sim.open_positions > 0).mean()), average_leverage=float(leverage.mean()),
        max_leverage=float(leverage.max()), max_open_positions=int(sim.open_positions.max()),
        turnover=_turnover(sim, capital, len(sim.equity) / metrics.bars_per_year(timeframe)),
    )


def _turnover(sim: Simulation, capital: float, years: float) -> float:
    """Traded notional (entries and exits) per year, in multiples of the mean equity."""
    traded = float((sim.trade("quantity") * (sim.trade("entry_price") + sim.trade("exit_price"))).sum())
    return traded / (float(np.mean(sim.equity)) or capital) / years if years > 0 else 0.0


def _summary(inputs: Inputs, result: metrics.Headline, spread: Intervals, baseline: metrics.Headline,
             trades: int) -> str:
    kind = "SYNTHETIC data" if inputs.synthetic else "market data"
    verdict = "beats" if result.total_return > baseline.total_return else "does NOT beat"
    sharpe = "n/a" if result.sharpe is None else f"{result.sharpe:.2f}"
    if result.sharpe is not None and spread.sharpe is not None:
        sharpe += f" ({spread.confidence:.0%} interval {spread.sharpe.low:.2f} to {spread.sharpe.high:.2f})"
    base_sharpe = "n/a" if baseline.sharpe is None else f"{baseline.sharpe:.2f}"
    flat = " (it stayed flat: no signal's expected move paid the round trip by the margin)" if not trades else ""
    return (
        f"{len(inputs.panel.symbols)} assets, {inputs.panel.index[0]:%Y-%m-%d} to {inputs.panel.index[-1]:%Y-%m-%d} "
        f"({kind}), {trades} trades{flat}: total return {result.total_return:+.2%}, Sharpe {sharpe}, max drawdown "
        f"{result.max_drawdown:.2%}; it {verdict} buy-and-hold of the same assets ({baseline.total_return:+.2%}, "
        f"Sharpe {base_sharpe}, max drawdown {baseline.max_drawdown:.2%}). Signals: {inputs.described}."
    )


def _notes(inputs: Inputs, coverage, request: BacktestRequest) -> list[str]:
    notes = list(inputs.notes)
    if not request.costs.funding:
        notes.append("funding was not applied (costs.funding is false)")
    if request.costs.funding:
        notes += list(dict.fromkeys(c.note if c.note == SPOT else f"{c.symbol}: {c.note}" for c in coverage if c.note))
    return notes


def _write_artifacts(folder: Path, record: BacktestRecord, index: pd.DatetimeIndex, sim: Simulation,
                     baseline: np.ndarray, trades: pd.DataFrame) -> None:
    drawdown = metrics.drawdowns(sim.equity, record.capital)
    curve = {
        "run_id": record.id, "timeframe": record.timeframe, "capital": record.capital,
        "time": [t.isoformat() for t in index], "equity": _rounded(sim.equity), "cash": _rounded(sim.cash),
        "drawdown": _rounded(drawdown, 6), "gross_exposure": _rounded(sim.gross),
        "margin_used": _rounded(sim.gross / record.policy.limits.max_leverage),  # initial margin at the leverage cap
        "open_positions": sim.open_positions.tolist(), "buy_and_hold": _rounded(baseline),
    }
    write_atomically(folder / "equity.json", lambda tmp: tmp.write_text(json.dumps(curve)))
    title = f"{record.id}: {record.strategy}, {', '.join(s.split('/')[0] for s in record.symbols)} {record.timeframe}"
    if record.synthetic:
        title += " (SYNTHETIC data)"
    png = equity_chart(index, sim.equity, baseline, drawdown, title)
    write_atomically(folder / "equity.png", lambda tmp: tmp.write_bytes(png))
    write_atomically(folder / "trades.csv", lambda tmp: trades.to_csv(tmp, index=False))


def _rounded(values: np.ndarray, digits: int = 4) -> list[float]:
    return np.round(values.astype(np.float64), digits).tolist()


def _versions() -> dict[str, str]:
    packages = ["numpy", "pandas", "numba", "ta-lib"]
    return {"mcp-trader": __version__, "python": platform.python_version(), **{p: version(p) for p in packages}}
