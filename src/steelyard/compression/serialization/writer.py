"""``save_compressed``: write a compressed model atomically, never over the original's files.

The folder is written to a temporary sibling and renamed into place, so a crash leaves either the
old folder or the new one, never half of one. An onnxruntime-backend model may instead be saved as
a single ``.onnx`` file (written to a temporary file, then renamed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steelyard.compression.serialization.manifest import ONNX_FILE, build_manifest, write_manifest
from steelyard.compression.serialization.records import (
    module_records,
    plain_state_dict,
    structural_attrs,
    tensor_specs,
)
from steelyard.errors import CompressionError

if TYPE_CHECKING:
    from steelyard.compression.api import CompressedModel


def _write_torch(cm: CompressedModel, folder: Path, manifest: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    model = cm.handle.module
    state = plain_state_dict(model)
    manifest["modules"] = module_records(model)
    manifest["tensors"] = tensor_specs(state)
    manifest["attrs"] = structural_attrs(model)
    if hasattr(model, "save_pretrained"):
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(folder, state_dict=state)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        return
    seen: dict[int, str] = {}
    unique = {}
    for key, value in state.items():  # safetensors refuses shared storage: keep the first name
        ptr = value.untyped_storage().data_ptr()
        if value.numel() and ptr in seen:
            manifest.setdefault("aliases", {})[key] = seen[ptr]
            continue
        seen[ptr] = key
        unique[key] = value.clone() if value.numel() else value
    save_file(unique, str(folder / "model.safetensors"), metadata={"format": "pt"})
    if cm.handle.config is not None and hasattr(cm.handle.config, "save_pretrained"):
        cm.handle.config.save_pretrained(folder)


def _write_onnx(cm: CompressedModel, folder: Path, manifest: dict[str, Any]) -> None:
    module = cm.handle.module
    (folder / ONNX_FILE).write_bytes(module.model_bytes)
    manifest["modules"] = {"": module.steelyard_record()}
    config = cm.handle.config
    if config is not None and hasattr(config, "save_pretrained"):
        config.save_pretrained(folder)


def _protected(cm: CompressedModel, target: Path) -> None:
    for source in (cm.source_path, cm.handle.path):
        if source is None:
            continue
        src = Path(source).resolve()
        if target == src or src in target.parents or target in src.parents:
            raise CompressionError(
                f"refusing to write {target}: it would overwrite or contain the original model "
                f"files in {src}; choose another output folder"
            )


def _save_onnx_file(cm: CompressedModel, target: Path, overwrite: bool) -> Path:
    if cm.backend != "onnxruntime":
        raise CompressionError(
            f"{target.name}: only an onnxruntime-backend model saves as an .onnx file; give a folder name"
        )
    if target.exists() and not overwrite:
        raise CompressionError(f"{target} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(cm.handle.module.model_bytes)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_compressed(cm: CompressedModel, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``cm`` to the folder ``path`` (or the ``.onnx`` file ``path``); returns the resolved path."""
    target = path.expanduser().resolve()
    _protected(cm, target)
    runtime = getattr(cm.handle.module, "runtime", None)  # served by steelyard.backends (compress --backend)
    if runtime == "openvino":
        from steelyard.backends.artifact import save_artifact

        return save_artifact(cm.handle.module, cm.handle, target, fidelity=cm.fidelity, overwrite=overwrite)
    if runtime == "torch-compile":  # compiled code is not saved: the torch model is, and compiles again on load
        import dataclasses

        inner = cm.handle.module.model._orig_mod
        cm = dataclasses.replace(cm, handle=cm.handle.with_module(inner), backend="torch")
    if target.suffix == ".onnx":
        return _save_onnx_file(cm, target, overwrite)
    if target.exists() and (target.is_file() or any(target.iterdir())) and not overwrite:
        raise CompressionError(
            f"{target} exists and is not empty; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        manifest = build_manifest(cm)
        if cm.backend == "onnxruntime":
            _write_onnx(cm, tmp, manifest)
        else:
            _write_torch(cm, tmp, manifest)
        write_manifest(tmp, manifest)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
