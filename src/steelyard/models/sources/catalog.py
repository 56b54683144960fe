"""A name from the offline architecture catalog (``architectures.yaml``): config only, no weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from steelyard.errors import ModelSourceError
from steelyard.models.catalog import find_entry
from steelyard.models.handle import ModelHandle
from steelyard.models.hf import from_config

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig


class CatalogLoader:
    """Takes a catalog key always, and a catalog hub id only with ``config_only`` (else the hub loads it).

    A catalog key without ``config_only`` is refused with the hub id to use: the catalog has no weights.
    """

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        if Path(source).expanduser().exists():
            return False
        entry = find_entry(source)
        return entry is not None and (cfg.config_only or entry.name == source.lower())

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        entry = find_entry(source)
        if entry is None:
            raise ModelSourceError(f"'{source}' is not in the architecture catalog")
        if not cfg.config_only:
            raise ModelSourceError(
                f"'{source}' is a catalog architecture (config only): add --config-only, "
                f"or pass the hub id '{entry.hub_id}' to load its weights"
            )
        return from_config(entry.build_config(), entry.name, "catalog", cfg, default_task=entry.task)


LOADER = CatalogLoader()
