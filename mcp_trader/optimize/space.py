"""What a study tunes, per target: the learner's settings, the labels, and the strategy's entry and exits.

Every trial draws from these ranges; what is not drawn keeps the defaults of train_model and run_backtest.
"""

from typing import Any, Literal

Target = Literal["xgboost", "lstm", "confluence", "trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum"]
RULE_TARGETS = ("trend_4h", "trend_1d", "breakout_4h", "breakout_1d", "momentum")  # mcp_trader.backtest.baselines
TARGETS = ("xgboost", "lstm", "confluence", *RULE_TARGETS)
HORIZONS = (12, 24, 48)


def suggest(trial, target: str) -> dict[str, Any]:
    """The trial's parameters, grouped as {"learner": …, "labels": …, "strategy": …}."""
    strategy = {
        "stop_atr": trial.suggest_float("stop_atr", 1.0, 4.0),
        "take_profit_atr": trial.suggest_float("take_profit_atr", 1.0, 6.0),
    }
    if target in RULE_TARGETS:  # the rule itself is fixed (textbook settings), traded without the cost gate
        strategy["max_hold_bars"] = trial.suggest_categorical("max_hold_bars", (0, 24, 72, 168))
        return {"learner": {}, "labels": {}, "strategy": strategy}
    strategy["cost_margin"] = trial.suggest_float("cost_margin", 0.0, 3.0)  # of the cost gate (backtest/edge.py)
    if target == "confluence":
        strategy["threshold"] = trial.suggest_float("threshold", 0.2, 0.9)
        strategy["max_hold_bars"] = trial.suggest_int("max_hold_bars", 6, 72, log=True)
        return {"learner": {}, "labels": {}, "strategy": strategy}
    strategy["min_confidence"] = trial.suggest_float("min_confidence", 0.34, 0.7)
    labels = {"horizon": trial.suggest_categorical("horizon", HORIZONS),
              "barrier": trial.suggest_float("barrier", 0.5, 2.5)}
    return {"learner": _learner(trial, target), "labels": labels, "strategy": strategy}


def _learner(trial, target: str) -> dict[str, Any]:
    if target == "xgboost":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
        }
    return {  # lstm: a small search around sizes a CPU can afford; a GPU takes the bigger end
        "hidden": trial.suggest_categorical("hidden", (16, 32, 64, 128)),
        "layers": trial.suggest_int("layers", 1, 3),
        "seq_len": trial.suggest_categorical("seq_len", (16, 32, 60)),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "learning_rate": trial.suggest_float("lstm_learning_rate", 1e-4, 1e-2, log=True),
    }
