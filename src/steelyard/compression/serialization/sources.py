"""steelyard's own artifacts as model sources: the loaders the model registry names lazily.

:data:`steelyard.models.registry.BUILTIN` lists these as ``"module:attr"`` strings, so ``models/``
never imports ``compression/``. Detection is by file name only (the manifest, the ``.onnx``
suffix); the rebuild itself (:func:`~steelyard.compression.serialization.loader.load_compressed`)
is imported when a source is loaded. With ``config_only`` a plain compressed folder is weighed from
its ``config.json`` like any other folder, a guarded one from its ``steelyard_config.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from steelyard.compression.serialization.manifest import MANIFEST
from steelyard.compression.serialization.plain_hf import is_guarded

if TYPE_CHECKING:
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig


def _load(source: str, cfg: LoadConfig) -> ModelHandle:
    from steelyard.compression.serialization.loader import load_compressed

    return load_compressed(Path(source).expanduser(), cfg)


class CompressedFolderLoader:
    """A folder written by ``steelyard compress``: pruned widths and int8 layers that
    ``from_pretrained`` cannot rebuild, replayed from ``steelyard_compression.json``.

    With ``config_only`` only a guarded folder is taken (its config is not ``config.json``); a plain
    one is weighed by the folder loader like any ``save_pretrained`` folder."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        path = Path(source).expanduser()
        if not (path.is_dir() and (path / MANIFEST).is_file()):
            return False
        return not cfg.config_only or is_guarded(path)

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        if cfg.config_only:
            return _config_only(Path(source).expanduser(), cfg)
        return _load(source, cfg)


def _config_only(path: Path, cfg: LoadConfig) -> ModelHandle:
    """The architecture its config states, on the meta device; the weight files listed for sizes on disk."""
    from steelyard.compression.serialization.plain_hf import read_config
    from steelyard.errors import ModelSourceError
    from steelyard.models.hf import from_config, weight_files

    config = read_config(path)
    if config is None:
        raise ModelSourceError(f"{path} has no config to weigh on the meta device (its model was built by a "
                               "factory); load it without --config-only")
    handle = from_config(config, str(path), "local", cfg, path=path)
    handle.weights_files = weight_files(path)
    return handle


class OnnxFileLoader:
    """A bare ``.onnx`` file, run through ONNX Runtime; example inputs from the session's inputs."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        path = Path(source).expanduser()
        return not cfg.config_only and path.is_file() and path.suffix == ".onnx"

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        return _load(source, cfg)


COMPRESSED_LOADER = CompressedFolderLoader()
ONNX_FILE_LOADER = OnnxFileLoader()
