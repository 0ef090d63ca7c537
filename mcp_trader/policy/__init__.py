"""The trading policy that backtest, paper and live share, pure (no I/O, no state of its own): the signal rules
(signals.py), the risk limits (limits.py), a strategy's rules (rules.py: the limits and how positions end), the
entry size (sizing.py), the bar-close decision kernel (kernel.py: stops and take-profits, exits, entries) and the
guard every order passes (guard.py). The backtest engine calls the kernel on every bar, the paper loop once per new
bar, and every order, paper or live, goes through the guard with the same limits."""
