"""One saved artifact per backend: the runtime's own files, the tokenizer, and the manifest.

The folder holds what the runtime itself reads (``model.onnx`` for ONNX Runtime, ``model.xml`` /
``model.bin`` for OpenVINO, a transformers folder for torch), the source's tokenizer files and its
config, and ``steelyard_compression.json`` with a ``runtime`` record (backend, precision,
input and output names). :func:`steelyard.load_model` recognises the manifest and loads the folder
through :func:`load_artifact`, so ``evaluate``, ``profile`` and ``compare`` take it like any model.
An ONNX or OpenVINO folder keeps the config as ``steelyard_config.json`` beside a ``config.json``
that plain transformers refuses with an error naming ``steelyard.load_model``
(:mod:`steelyard.compression.serialization.plain_hf`): it would otherwise build the architecture with
random weights. The folder is written next to its target and renamed into place: never half written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from steelyard.compression.fidelity import Fidelity
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig


def build_manifest(model: nn.Module, record: dict[str, Any], handle: ModelHandle,
                   fidelity: Fidelity | None) -> dict[str, Any]:
    import steelyard
    from steelyard.compression.serialization.manifest import FORMAT_VERSION, named_inputs

    return {
        "format": "steelyard-compression",
        "version": FORMAT_VERSION,
        "steelyard": steelyard.__version__,
        "torch": torch.__version__,
        "backend": model.runtime,
        "runtime": {"backend": model.runtime, "precision": model.precision, **record},
        "task": handle.task,
        "source": {"name": handle.name, "kind": handle.source_kind, "path": str(handle.path) if handle.path else None},
        "methods": [],
        "fidelity": None if fidelity is None else {
            "sqnr_db": fidelity.sqnr_db if fidelity.sqnr_db != float("inf") else "inf",
            "max_abs_error": fidelity.max_abs_error, "cosine": fidelity.cosine,
            "agreement": fidelity.agreement, "output": fidelity.output},
        "example_inputs": {k: list(v.shape) for k, v in named_inputs(handle.inputs).items()},
    }


def _copy_preprocessing(source: Path | None, folder: Path) -> None:
    from steelyard.compression.recipe.result import PREPROCESSING_FILES

    if source is None or not Path(source).is_dir():
        return
    for name in PREPROCESSING_FILES:
        file = Path(source) / name
        if file.is_file() and not (folder / name).exists():
            shutil.copy2(file, folder / name)


def save_artifact(model: nn.Module, handle: ModelHandle, path: str | Path, *, fidelity: Fidelity | None = None,
                  overwrite: bool = False) -> Path:
    """Write ``model`` (a backend's runtime model of ``handle``) to the folder ``path``."""
    from steelyard.backends.registry import get_backend
    from steelyard.compression.serialization.manifest import write_manifest
    from steelyard.compression.serialization.plain_hf import write_guard
    from steelyard.outputs import write_atomically

    def write(tmp: Path) -> None:
        record = get_backend(model.runtime).save(model, tmp)
        if not (tmp / "config.json").exists():  # not a transformers folder (torch's is): plain transformers refuses it
            write_guard(tmp, handle.config, f"it is a {model.runtime} artifact ({record.get('file', 'runtime files')})")
        _copy_preprocessing(handle.path, tmp)
        write_manifest(tmp, build_manifest(model, record, handle, fidelity))

    # the one atomic writer: never over the original's files, an existing model only with overwrite
    return write_atomically(path, write, overwrite=overwrite, inputs=(handle.path,))


def _example_inputs(module: nn.Module, config: Any, task: str, cfg: LoadConfig,
                    manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Inputs the runtime declares: token ids from the config where there is one, the rest shaped like them
    (segment ids zero, masks one), since an exported graph may take inputs the config's example lacks."""
    from steelyard.models.tasks import make_inputs

    names = getattr(module, "input_names", None)
    inputs = make_inputs(config, task, cfg.inputs, "cpu") if config is not None else {}
    shapes = manifest.get("example_inputs") or {}
    like = next(iter(inputs.values()), None)
    for name in names or shapes:
        if name not in inputs:
            shape = list(like.shape) if like is not None else [cfg.inputs.batch_size, cfg.inputs.seq_len]
            fill = torch.zeros if "type" in name else torch.ones
            inputs[name] = fill(shape, dtype=torch.int64)
    return {k: v for k, v in inputs.items() if names is None or k in names}


def load_artifact(folder: Path, manifest: dict[str, Any], cfg: LoadConfig, task: str, config: Any) -> ModelHandle:
    """A saved runtime artifact as a :class:`ModelHandle` running in its runtime."""
    from steelyard.backends.registry import require_backend
    from steelyard.models.handle import ModelHandle

    record = manifest["runtime"]
    backend = require_backend(record["backend"])
    module = backend.load(folder, record)
    files = [folder / record["file"]] if record.get("file") else sorted(folder.glob("*.safetensors"))
    if record.get("file", "").endswith(".xml"):
        files.append((folder / record["file"]).with_suffix(".bin"))
    return ModelHandle(name=str(folder), source_kind="local", task=task, module=module,
                       inputs=_example_inputs(module, config, task, cfg, manifest), config=config, path=folder,
                       weights_files=files)
