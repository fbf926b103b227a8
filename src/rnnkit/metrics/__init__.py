"""Forecast accuracy: point metrics (forecast) and rolling-origin evaluation (backtest)."""
