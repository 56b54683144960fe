"""Training: one trainer (:func:`fit`) with pluggable objectives (cross-entropy, next-token,
distillation on logits, hidden-state matching), one launcher (single process, ``nproc`` local
processes, torchrun), fine-tuning, optimizer comparison and learning curves."""

from __future__ import annotations

from steelyard.training.compare import OptimizerComparison, OptimizerRun, compare_optimizers
from steelyard.training.config import DEFAULT_LR, OPTIMIZERS, FinetuneConfig
from steelyard.training.data_needs import CurvePoint, DataNeeds, PowerLawFit, data_needs, fit_power_law
from steelyard.training.finetune import finetune
from steelyard.training.objectives import (
    CrossEntropy,
    Forward,
    HiddenStateMatching,
    LogitDistillation,
    NextToken,
    Objective,
    task_objective,
)
from steelyard.training.result import (
    DistributedInfo,
    EvalPoint,
    FinetuneResult,
    TargetProgress,
    TrainingCost,
)
from steelyard.training.trainer import Charges, Fitted, fit

__all__ = [
    "DEFAULT_LR",
    "OPTIMIZERS",
    "Charges",
    "CrossEntropy",
    "CurvePoint",
    "DataNeeds",
    "DistributedInfo",
    "EvalPoint",
    "FinetuneConfig",
    "FinetuneResult",
    "Fitted",
    "Forward",
    "HiddenStateMatching",
    "LogitDistillation",
    "NextToken",
    "Objective",
    "OptimizerComparison",
    "OptimizerRun",
    "PowerLawFit",
    "TargetProgress",
    "TrainingCost",
    "compare_optimizers",
    "data_needs",
    "finetune",
    "fit",
    "fit_power_law",
    "task_objective",
]
