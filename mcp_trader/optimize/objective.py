"""A trial's score: the out-of-sample Sharpe of the backtest over the walk-forward folds' test blocks.

For a model target, each fold's learner is fitted on that fold's training rows only (purged, embargoed,
as train_model does), predicts its test block, and the backtester trades those predictions; for the
confluence rule, the rule trades each test block. Each fold starts from the same capital and the folds'
per-bar returns are chained; the Sharpe so far is reported after every fold so that a hopeless trial is
pruned early. Nothing a fold's learner or signals see comes from its test block.
"""

from dataclasses import dataclass

import numpy as np
import optuna

from mcp_trader.backtest import edge
from mcp_trader.backtest.baselines import rule_signals
from mcp_trader.backtest.engine import simulate, utc_days
from mcp_trader.backtest.funding import FundingCoverage, funding_grid
from mcp_trader.backtest.inputs import confluence_score
from mcp_trader.backtest.metrics import bars_per_year, returns_of
from mcp_trader.backtest.params import Costs, Risk
from mcp_trader.features.dataset import FeatureSet
from mcp_trader.features.indicators import atr
from mcp_trader.models.base import CLASSES, Report, silent
from mcp_trader.models.data import LabelSpec, training_data
from mcp_trader.models.edge import validated_scale
from mcp_trader.models.params import LSTMParams, XGBParams
from mcp_trader.models.training import TEST_SHARE, VAL_SHARE, TrainRequest, make_learner
from mcp_trader.models.walkforward import walk_forward
from mcp_trader.optimize.deflated import moments
from mcp_trader.optimize.overfitting import block_moments
from mcp_trader.optimize.space import RULE_TARGETS, suggest
from mcp_trader.policy import signals as rules
from mcp_trader.policy.limits import RiskLimits

DEFAULT_HORIZON = 24
LSTM_BUDGET = {"epochs": 3, "patience": 1, "samples_per_epoch": 4096, "batch_size": 128}  # per fold, per trial


@dataclass(frozen=True)
class Market:
    """What every trial of a study trades on, computed once."""

    fs: FeatureSet
    atr: np.ndarray
    funding: np.ndarray
    per_year: float
    coverage: list[FundingCoverage]

    @classmethod
    def of(cls, fs: FeatureSet, fetched: dict | None = None) -> "Market":
        """`fetched`: the venues' stored settlements (backtest.funding.stored_funding), charged past the bundled
        history as run_backtest charges them."""
        panel = fs.panel
        rates, coverage = funding_grid(list(panel.symbols), panel.index, panel.timeframe, fetched)
        return cls(fs=fs, atr=atr(panel), funding=rates, per_year=bars_per_year(panel.timeframe), coverage=coverage)


class Objective:
    def __init__(self, market: Market, target: str, folds: int, capital: float, limits: RiskLimits, device: str,
                 report: Report = silent):
        self.market, self.target, self.folds = market, target, folds
        self.capital, self.limits, self.device, self.report = capital, limits, device, report
        self._rule_folds: list[tuple[int, int]] | None = None
        self._rule_strength: np.ndarray | None = None  # a baseline rule's, set when its signals are built
        self._rule_hold = 0

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest(trial, self.target)
        returns, fold_sharpes, trades = [], [], 0
        for k, (bars, signal, expected) in enumerate(self._folds(params, trial.number)):
            fold_returns, fold_trades = self._trade(bars, signal, expected, params["strategy"])
            returns.append(fold_returns)
            trades += fold_trades
            fold_sharpes.append(self._annualised(fold_returns))
            so_far = self._annualised(np.concatenate(returns))
            trial.report(so_far, k)
            if trial.should_prune():
                trial.set_user_attr("fold_sharpes", fold_sharpes)
                raise optuna.TrialPruned(f"Sharpe {so_far:.2f} after fold {k + 1} is below the median")
        chained = np.concatenate(returns)
        sharpe_per_bar, skew, kurtosis = moments(chained)
        for name, value in {"sharpe_per_bar": sharpe_per_bar, "bars": len(chained), "skew": skew,
                            "kurtosis": kurtosis, "fold_sharpes": fold_sharpes, "trades": trades,
                            "total_return": float(np.prod(1 + chained) - 1),
                            "block_moments": block_moments(chained)}.items():
            trial.set_user_attr(name, value)
        return self._annualised(chained)

    def _folds(self, params: dict, number: int):
        """(test bar range, signal, expected move) per fold, fitted lazily so that pruning saves the later fits."""
        fs = self.market.fs
        shortest = fs.spec.bars[fs.spec.shortest]
        if self.target in RULE_TARGETS:
            signal, self._rule_strength, self._rule_hold = rule_signals(self.target, fs.panel)
            for bars in self._confluence_folds():
                yield bars, signal, None
            return
        if self.target == "confluence":
            score = confluence_score(fs.panel, fs.frame)
            signal = rules.from_confluence(score, params["strategy"]["threshold"])
            width = edge.barrier_width(fs.panel.close, params["strategy"]["max_hold_bars"], 1.0, shortest)
            for bars in self._confluence_folds():
                yield bars, signal, edge.expected_from_score(score, width)
            return
        labels = LabelSpec(**params["labels"])
        data = training_data(fs, "general", labels)
        width = edge.barrier_width(fs.panel.close, labels.horizon, labels.barrier, shortest)
        splits = walk_forward(data, self.folds, labels.horizon, "expanding", TEST_SHARE, VAL_SHARE)
        for k, split in enumerate(splits):
            learner = make_learner(self._train_request(params), self.device)
            learner.fit(data, split.train, split.val, self._within(number, k))
            proba = np.full((*fs.panel.shape, len(CLASSES)), np.nan)
            proba[data.bar[split.test], data.asset[split.test]] = learner.predict_proba(data, split.test)
            signal = rules.from_probabilities(proba, params["strategy"]["min_confidence"])
            scale = validated_scale(learner, data, split.val).scale
            yield split.test_bars, signal, scale * edge.expected_from_probabilities(proba, width)

    def _confluence_folds(self) -> list[tuple[int, int]]:
        """The rule learns nothing, so its test blocks are the same for every trial: found once."""
        if self._rule_folds is None:
            data = training_data(self.market.fs, "general", LabelSpec(horizon=DEFAULT_HORIZON))
            splits = walk_forward(data, self.folds, DEFAULT_HORIZON, "expanding", TEST_SHARE, VAL_SHARE)
            self._rule_folds = [split.test_bars for split in splits]
        return self._rule_folds

    def _trade(self, bars: tuple[int, int], signal, expected, strategy: dict) -> tuple[np.ndarray, int]:
        """The fold's test bars traded as run_backtest trades them: the cost gate, then the engine."""
        a, b = bars
        panel, m = self.market.fs.panel, self.market
        risk = Risk(stop_atr=strategy["stop_atr"], take_profit_atr=strategy["take_profit_atr"])
        hold = strategy.get("max_hold_bars", DEFAULT_HORIZON)
        min_hold = self.market.fs.spec.bars[self.market.fs.spec.shortest] if self.target == "confluence" else 0
        if expected is None:  # a baseline rule: traded as it stands, held a bar of its timeframe at least
            if self._rule_strength is None:
                raise RuntimeError("a baseline rule's fold is traded before its signals were built")
            gated, strength, fraction, min_hold = signal[a:b], self._rule_strength[a:b], None, self._rule_hold
        policy = risk.policy(self.limits, hold, min_hold)
        if expected is not None:
            gated, strength, fraction, _ = edge.gate(signal[a:b], expected[a:b], strategy["cost_margin"], Costs(),
                                                     policy.limits, self.capital, panel.close[a:b], m.atr[a:b],
                                                     panel.volume[a:b])
        sim = simulate(panel.open[a:b], panel.high[a:b], panel.low[a:b], panel.close[a:b], panel.volume[a:b],
                       gated, strength, m.atr[a:b], m.funding[a:b], self.capital, policy, Costs(), fraction,
                       utc_days(panel.index[a:b]))
        return returns_of(sim.equity, self.capital), len(sim.trades)

    def _train_request(self, params: dict) -> TrainRequest:
        symbols = list(self.market.fs.panel.symbols)
        if self.target == "xgboost":
            return TrainRequest(kind="xgboost", symbols=symbols, xgboost=XGBParams(**params["learner"]))
        return TrainRequest(kind="lstm", symbols=symbols, lstm=LSTMParams(**{**LSTM_BUDGET, **params["learner"]}))

    def _annualised(self, returns: np.ndarray) -> float:
        sharpe, _, _ = moments(returns)
        return float(sharpe * np.sqrt(self.market.per_year))

    def _within(self, number: int, fold: int) -> Report:
        return lambda fraction, message: self.report(fraction, f"trial {number}, fold {fold + 1}/{self.folds}: "
                                                               f"{message}")
