"""HTTP service: forecasts, option prices, Greeks and probabilities (FastAPI)."""
