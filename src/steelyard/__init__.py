"""steelyard: weigh what a deep-learning model costs, measure what it is worth, make it lighter.

The public API is imported lazily so ``import steelyard`` stays fast (torch and transformers
load only when a function that needs them is called).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "steelyard.models.loading",
    "LoadConfig": "steelyard.models.loading",
    "InputSpec": "steelyard.models.tasks",
    "ModelHandle": "steelyard.models.handle",
    "profile": "steelyard.profiling.profile",
    "ProfileConfig": "steelyard.profiling.profile",
    "CostReport": "steelyard.profiling.report",
    "CostCounter": "steelyard.profiling.counter",
    "count_forward": "steelyard.profiling.counting",
    "weigh": "steelyard.profiling.weigh",
    "time_interleaved": "steelyard.profiling.interleaved",
    "estimate_training": "steelyard.profiling.training_cost",
    "get_hardware": "steelyard.hardware",
    "load_dataset": "steelyard.data",
    "evaluate": "steelyard.evaluation",
    "EvaluationResult": "steelyard.evaluation",
    "finetune": "steelyard.training",
    "FinetuneConfig": "steelyard.training",
    "compare_optimizers": "steelyard.training",
    "data_needs": "steelyard.training",
    "distill": "steelyard.distill",
    "DistillConfig": "steelyard.distill",
    "make_student": "steelyard.distill",
    "compress": "steelyard.compression",
    "parse_method": "steelyard.compression",
    "parse_recipe": "steelyard.compression.recipe",
    "run_recipe": "steelyard.compression.recipe",
    "RecipeOptions": "steelyard.compression.recipe",
    "compare": "steelyard.comparison",
    "CompareConfig": "steelyard.comparison",
    "Constraints": "steelyard.comparison",
    "pareto_front": "steelyard.search.pareto",
    "recommend": "steelyard.search.pareto",
    "run_search": "steelyard.search.runner",
    "SearchSpace": "steelyard.search.space",
    "StudySpec": "steelyard.search.study",
    "open_study": "steelyard.search.study",
    "open_storage": "steelyard.search.storage",
    "get_backend": "steelyard.backends.registry",
    "runtime_table": "steelyard.backends.select",
    "save_artifact": "steelyard.backends.artifact",
    "Calibration": "steelyard.backends.base",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'steelyard' has no attribute {name!r}")
