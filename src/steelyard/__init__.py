"""steelyard: weigh what a deep-learning model costs, measure what it is worth, make it lighter.

The public API is imported lazily so ``import steelyard`` stays fast (torch and transformers
load only when a function that needs them is called). ``_LAZY`` names each public name's module;
``dir(steelyard)`` lists them, and the ``TYPE_CHECKING`` imports below let type checkers and IDEs
see the same names with their real signatures (``tests/test_public_api.py`` keeps the two in step).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # what the lazy table gives at run time, for type checkers and IDEs (X as X: a re-export)
    from steelyard.backends.artifact import save_artifact as save_artifact
    from steelyard.backends.base import Calibration as Calibration
    from steelyard.backends.registry import get_backend as get_backend
    from steelyard.backends.select import runtime_table as runtime_table
    from steelyard.comparison import CompareConfig as CompareConfig
    from steelyard.comparison import Constraints as Constraints
    from steelyard.comparison import compare as compare
    from steelyard.compression import compress as compress
    from steelyard.compression import parse_method as parse_method
    from steelyard.compression.recipe import RecipeOptions as RecipeOptions
    from steelyard.compression.recipe import parse_recipe as parse_recipe
    from steelyard.compression.recipe import run_recipe as run_recipe
    from steelyard.data import load_dataset as load_dataset
    from steelyard.distill import DistillConfig as DistillConfig
    from steelyard.distill import distill as distill
    from steelyard.distill import make_student as make_student
    from steelyard.evaluation import EvaluationResult as EvaluationResult
    from steelyard.evaluation import evaluate as evaluate
    from steelyard.evaluation.progress import set_progress_display as set_progress_display
    from steelyard.families.geometry import geometry as geometry
    from steelyard.families.geometry import kv_cache as kv_cache
    from steelyard.families.inputs import example_inputs as example_inputs
    from steelyard.hardware import HardwareSettings as HardwareSettings
    from steelyard.hardware import get_hardware as get_hardware
    from steelyard.models.handle import ModelHandle as ModelHandle
    from steelyard.models.loading import LoadConfig as LoadConfig
    from steelyard.models.loading import load_model as load_model
    from steelyard.models.registry import Loader as Loader
    from steelyard.models.registry import register_loader as register_loader
    from steelyard.models.tasks import InputSpec as InputSpec
    from steelyard.profiling.counter import CostCounter as CostCounter
    from steelyard.profiling.counting import count_forward as count_forward
    from steelyard.profiling.generation import profile_generation as profile_generation
    from steelyard.profiling.generation_config import GenerationWorkload as GenerationWorkload
    from steelyard.profiling.generation_report import GenerationReport as GenerationReport
    from steelyard.profiling.interleaved import time_interleaved as time_interleaved
    from steelyard.profiling.op_table_custom import OpFormula as OpFormula
    from steelyard.profiling.op_table_custom import register_formula as register_formula
    from steelyard.profiling.profile import ProfileConfig as ProfileConfig
    from steelyard.profiling.profile import profile as profile
    from steelyard.profiling.report import CostReport as CostReport
    from steelyard.profiling.training_cost import estimate_training as estimate_training
    from steelyard.profiling.weigh import weigh as weigh
    from steelyard.search.config import OptimizeConfig as OptimizeConfig
    from steelyard.search.config import SearchConfig as SearchConfig
    from steelyard.search.optimize_run import OptimizeResult as OptimizeResult
    from steelyard.search.optimize_run import optimize as optimize
    from steelyard.search.pareto import pareto_front as pareto_front
    from steelyard.search.pareto import recommend as recommend
    from steelyard.search.runner import run_search as run_search
    from steelyard.search.search_run import SearchResult as SearchResult
    from steelyard.search.search_run import search as search
    from steelyard.search.space import SearchSpace as SearchSpace
    from steelyard.search.storage import open_storage as open_storage
    from steelyard.search.study import StudySpec as StudySpec
    from steelyard.search.study import open_study as open_study
    from steelyard.significance import PairedChange as PairedChange
    from steelyard.significance import mcnemar as mcnemar
    from steelyard.significance import paired_changes as paired_changes
    from steelyard.training import FinetuneConfig as FinetuneConfig
    from steelyard.training import compare_optimizers as compare_optimizers
    from steelyard.training import data_needs as data_needs
    from steelyard.training import finetune as finetune


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        if name == "search":  # a subpackage and a verb at once: the package is callable (see steelyard.search)
            return module
        return getattr(module, name)
    raise AttributeError(f"module 'steelyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (lazy ones included, though not yet imported) and the module's own."""
    return sorted({*globals(), *_LAZY})
