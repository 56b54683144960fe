"""A ``save_pretrained`` folder (a ``config.json`` and weights) on the local disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steelyard.errors import ModelSourceError, UnsupportedConfigError
from steelyard.models.handle import ModelHandle
from steelyard.models.hf import from_config, load_pretrained, weight_files

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig


class FolderLoader:
    """With ``config_only`` the weights are listed (for sizes on disk) but not read."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        path = Path(source).expanduser()
        return path.is_dir() and (path / "config.json").is_file()

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        path = Path(source).expanduser()
        config = _read_folder_config(path, cfg)
        if cfg.config_only:
            handle = from_config(config, str(path), "local", cfg, path=path)
            handle.weights_files = weight_files(path)
            return handle
        return load_pretrained(str(path), config, "local", cfg, path=path)


def _read_folder_config(path: Path, cfg: LoadConfig) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=cfg.trust_remote_code)
    except ValueError as exc:
        raise UnsupportedConfigError(f"{path}: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise ModelSourceError(f"cannot read the config in {path}: {str(exc).splitlines()[0]}") from exc


LOADER = FolderLoader()
