"""Evaluation: what a model is worth on a task (metrics with bootstrap CIs), and the task
adapters that turn datasets into model inputs, shared with training."""

from __future__ import annotations

from steelyard.evaluation.evaluate import default_metrics, evaluate, resolve_metrics, score
from steelyard.evaluation.result import EvaluationResult, LMSummary, PredictionSummary

__all__ = [
    "EvaluationResult",
    "LMSummary",
    "PredictionSummary",
    "default_metrics",
    "evaluate",
    "resolve_metrics",
    "score",
]
