"""Fine-tuning: optimizers and schedule, early stopping, target-metric cost accounting,
distributed data parallel, optimizer comparison and learning curves."""

from __future__ import annotations

from steelyard.training.compare import OptimizerComparison, OptimizerRun, compare_optimizers
from steelyard.training.config import DEFAULT_LR, OPTIMIZERS, FinetuneConfig
from steelyard.training.data_needs import CurvePoint, DataNeeds, PowerLawFit, data_needs, fit_power_law
from steelyard.training.finetune import finetune
from steelyard.training.result import (
    DistributedInfo,
    EvalPoint,
    FinetuneResult,
    TargetProgress,
    TrainingCost,
)

__all__ = [
    "DEFAULT_LR",
    "OPTIMIZERS",
    "CurvePoint",
    "DataNeeds",
    "DistributedInfo",
    "EvalPoint",
    "FinetuneConfig",
    "FinetuneResult",
    "OptimizerComparison",
    "OptimizerRun",
    "PowerLawFit",
    "TargetProgress",
    "TrainingCost",
    "compare_optimizers",
    "data_needs",
    "finetune",
    "fit_power_law",
]
