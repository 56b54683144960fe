"""The offline catalog of well-known architectures (configs only, no weights)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    hub_id: str
    task: str
    reference_params: int
    config: dict[str, Any]

    def build_config(self) -> Any:
        from transformers import AutoConfig

        kwargs = dict(self.config)
        model_type = kwargs.pop("model_type")
        config = AutoConfig.for_model(model_type, **kwargs)
        config.name_or_path = self.hub_id
        return config


@lru_cache(maxsize=1)
def architecture_catalog() -> dict[str, CatalogEntry]:
    import yaml

    text = resources.files("steelyard.models").joinpath("architectures.yaml").read_text()
    raw = yaml.safe_load(text)
    return {name: CatalogEntry(name=name, **entry) for name, entry in raw.items()}


def find_entry(name: str) -> CatalogEntry | None:
    """Look a name up by catalog key or by hub id, case-insensitively."""
    wanted = name.lower()
    for entry in architecture_catalog().values():
        if wanted in (entry.name, entry.hub_id.lower()):
            return entry
    return None


def closest_names(name: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(name.lower(), list(architecture_catalog()), n=n, cutoff=0.5)
