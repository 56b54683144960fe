"""A Hugging Face ``config.json``-style file: the architecture on the meta device, no weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steelyard.errors import ModelSourceError, UnsupportedConfigError
from steelyard.models.handle import ModelHandle
from steelyard.models.hf import from_config

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig


class ConfigFileLoader:
    """Any ``.json`` file with a ``model_type``; the handle's ``path`` is the file's folder."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        path = Path(source).expanduser()
        return path.is_file() and path.suffix == ".json"

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        path = Path(source).expanduser()
        return from_config(read_config_file(path), source, "config", cfg, path=path.parent)


def read_config_file(path: Path) -> Any:
    from transformers import AutoConfig

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"cannot read config file {path}: {exc}") from exc
    model_type = data.pop("model_type", None) if isinstance(data, dict) else None
    if not model_type:
        raise UnsupportedConfigError(f"{path} has no 'model_type'; steelyard needs a Hugging Face config")
    try:
        return AutoConfig.for_model(model_type, **data)
    except (ValueError, KeyError) as exc:
        raise UnsupportedConfigError(f"unsupported model type '{model_type}' in {path}") from exc


LOADER = ConfigFileLoader()
