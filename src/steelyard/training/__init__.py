"""Training: one trainer (:func:`fit`) with pluggable objectives (cross-entropy, next-token,
distillation on logits, hidden-state matching), one launcher (single process, ``nproc`` local
processes, torchrun), fine-tuning, optimizer comparison and learning curves."""

from __future__ import annotations

from steelyard.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "steelyard.training.compare": ("OptimizerComparison", "OptimizerRun", "compare_optimizers"),
    "steelyard.training.config": ("DEFAULT_LR", "OPTIMIZERS", "FinetuneConfig"),
    "steelyard.training.data_needs": ("CurvePoint", "DataNeeds", "PowerLawFit", "data_needs", "fit_power_law"),
    "steelyard.training.finetune": ("finetune",),
    "steelyard.training.objectives": ("CrossEntropy", "Forward", "HiddenStateMatching", "LogitDistillation",
                                      "NextToken", "Objective", "task_objective"),
    "steelyard.training.result": ("DistributedInfo", "EvalPoint", "FinetuneResult", "TargetProgress",
                                  "TrainingCost"),
    "steelyard.training.trainer": ("Charges", "Fitted", "fit"),
})
