"""Model sources: hub ids, local folders, Python factories, configs and the offline catalog."""

from steelyard.models.catalog import CatalogEntry, architecture_catalog
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import LoadConfig, load_model
from steelyard.models.tasks import TASKS, InputSpec

__all__ = [
    "TASKS",
    "CatalogEntry",
    "InputSpec",
    "LoadConfig",
    "ModelHandle",
    "architecture_catalog",
    "load_model",
]
