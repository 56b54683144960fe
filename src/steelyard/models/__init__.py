"""Model sources: hub ids, local folders, Python factories, configs and the offline catalog.

Each kind of source is one loader in :mod:`steelyard.models.registry`; formats from packages above
(compressed folders, ONNX files) are registered there lazily by name.
"""

from steelyard.models.catalog import CatalogEntry, architecture_catalog
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import LoadConfig, load_model
from steelyard.models.registry import Loader, find_loader, loader_entries, register_loader, unregister_loader
from steelyard.models.tasks import TASKS, InputSpec

__all__ = [
    "TASKS",
    "CatalogEntry",
    "InputSpec",
    "LoadConfig",
    "Loader",
    "ModelHandle",
    "architecture_catalog",
    "find_loader",
    "load_model",
    "loader_entries",
    "register_loader",
    "unregister_loader",
]
