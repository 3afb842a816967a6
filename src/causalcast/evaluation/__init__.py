"""Honest evaluation: metrics with their uncertainty, significance tests against baselines,
a next-bar backtest with costs, and the gated grade.

Everything here is a pure function of forecasts and realised values: no model, no fitting.
"""

from causalcast.evaluation._validate import EvaluationInputError

__all__ = ["EvaluationInputError"]
