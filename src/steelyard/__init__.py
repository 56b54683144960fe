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
    "estimate_training": "steelyard.profiling.training_cost",
    "get_hardware": "steelyard.hardware",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'steelyard' has no attribute {name!r}")
