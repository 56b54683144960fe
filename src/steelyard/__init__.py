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
    "Loader": "steelyard.models.registry",
    "register_loader": "steelyard.models.registry",
    "profile": "steelyard.profiling.profile",
    "geometry": "steelyard.families.geometry",
    "kv_cache": "steelyard.families.geometry",
    "example_inputs": "steelyard.families.inputs",
    "ProfileConfig": "steelyard.profiling.profile",
    "profile_generation": "steelyard.profiling.generation",
    "GenerationWorkload": "steelyard.profiling.generation_config",
    "GenerationReport": "steelyard.profiling.generation_report",
    "CostReport": "steelyard.profiling.report",
    "CostCounter": "steelyard.profiling.counter",
    "count_forward": "steelyard.profiling.counting",
    "weigh": "steelyard.profiling.weigh",
    "time_interleaved": "steelyard.profiling.interleaved",
    "OpFormula": "steelyard.profiling.op_table_custom",
    "register_formula": "steelyard.profiling.op_table_custom",
    "estimate_training": "steelyard.profiling.training_cost",
    "get_hardware": "steelyard.hardware",
    "HardwareSettings": "steelyard.hardware",
    "load_dataset": "steelyard.data",
    "evaluate": "steelyard.evaluation",
    "mcnemar": "steelyard.significance",
    "paired_changes": "steelyard.significance",
    "PairedChange": "steelyard.significance",
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
    "optimize": "steelyard.search.optimize_run",
    "OptimizeConfig": "steelyard.search.config",
    "OptimizeResult": "steelyard.search.optimize_run",
    "search": "steelyard.search",
    "SearchConfig": "steelyard.search.config",
    "SearchResult": "steelyard.search.search_run",
    "pareto_front": "steelyard.search.pareto",
    "recommend": "steelyard.search.pareto",
    "run_search": "steelyard.search.runner",
    "SearchSpace": "steelyard.search.space",
    "StudySpec": "steelyard.search.study",
    "open_study": "steelyard.search.study",
    "open_storage": "steelyard.search.storage",
    "set_progress_display": "steelyard.evaluation.progress",
    "get_backend": "steelyard.backends.registry",
    "runtime_table": "steelyard.backends.select",
    "save_artifact": "steelyard.backends.artifact",
    "Calibration": "steelyard.backends.base",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        if name == "search":  # a subpackage and a verb at once: the package is callable (see steelyard.search)
            return module
        return getattr(module, name)
    raise AttributeError(f"module 'steelyard' has no attribute {name!r}")
