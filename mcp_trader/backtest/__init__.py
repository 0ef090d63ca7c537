"""Backtests: the engine, costs, risk sizing, metrics and charts (see engine.py for the event order)."""
