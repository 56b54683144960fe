"""Fine-tuning: optimizers and schedule, early stopping, target-metric cost accounting,
distributed data parallel, optimizer comparison and learning curves."""

from __future__ import annotations

from steelyard.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "steelyard.training.compare": ("OptimizerComparison", "OptimizerRun", "compare_optimizers"),
    "steelyard.training.config": ("DEFAULT_LR", "OPTIMIZERS", "FinetuneConfig"),
    "steelyard.training.data_needs": ("CurvePoint", "DataNeeds", "PowerLawFit", "data_needs", "fit_power_law"),
    "steelyard.training.finetune": ("finetune",),
    "steelyard.training.result": ("DistributedInfo", "EvalPoint", "FinetuneResult", "TargetProgress",
                                  "TrainingCost"),
})

