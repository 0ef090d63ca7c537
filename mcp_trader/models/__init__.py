"""Models: triple-barrier labels, XGBoost / LSTM / ensemble learners, walk-forward evaluation, the registry."""
