"""Optuna studies over model and strategy parameters, scored out of sample, discounted for the trials tried."""
