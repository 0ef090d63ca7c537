"""Shell entry points for long training runs (the models issue adds them)."""
