"""``save_compressed``: write a compressed model atomically, never over the original's files.

The folder is written to a temporary sibling and swapped into place (:mod:`steelyard.outputs`),
so a crash leaves either the old folder or the new one, never half of one. An
onnxruntime-backend model may instead be saved as a single ``.onnx`` file, the same way.
A model its config cannot describe is written guarded (:mod:`.plain_hf`): plain transformers then
raises an error naming ``steelyard.load_model`` instead of loading random weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steelyard.compression.serialization.manifest import ONNX_FILE, build_manifest, write_manifest
from steelyard.compression.serialization.plain_hf import WEIGHTS_FILE, plain_mismatch, write_guard
from steelyard.compression.serialization.records import (
    module_records,
    plain_state_dict,
    structural_attrs,
    tensor_specs,
)
from steelyard.errors import CompressionError
from steelyard.outputs import write_atomically

if TYPE_CHECKING:
    from steelyard.compression.api import CompressedModel


def _write_torch(cm: CompressedModel, folder: Path, manifest: dict[str, Any]) -> None:
    """A plain ``save_pretrained`` folder when its config rebuilds the model exactly, else a guarded one."""
    model = cm.handle.module
    state = plain_state_dict(model)
    manifest["modules"] = module_records(model)
    manifest["tensors"] = tensor_specs(state)
    manifest["attrs"] = structural_attrs(model)
    mismatch = plain_mismatch(model)
    if mismatch is None:
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(folder, state_dict=state)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        return
    _write_guarded_weights(folder, state, manifest)
    write_guard(folder, getattr(model, "config", None) or cm.handle.config, mismatch)


def _write_guarded_weights(folder: Path, state: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The state dict under a file name transformers never reads; shared tensors once, aliases in the manifest."""
    from safetensors.torch import save_file

    seen: dict[int, str] = {}
    unique = {}
    for key, value in state.items():  # safetensors refuses shared storage: keep the first name
        ptr = value.untyped_storage().data_ptr()
        if value.numel() and ptr in seen:
            manifest.setdefault("aliases", {})[key] = seen[ptr]
            continue
        seen[ptr] = key
        unique[key] = value.clone() if value.numel() else value
    save_file(unique, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})


def _write_onnx(cm: CompressedModel, folder: Path, manifest: dict[str, Any]) -> None:
    module = cm.handle.module
    (folder / ONNX_FILE).write_bytes(module.model_bytes)
    manifest["modules"] = {"": module.steelyard_record()}
    write_guard(folder, cm.handle.config, "it is an ONNX Runtime graph (model.onnx)")


def save_compressed(cm: CompressedModel, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``cm`` to the folder ``path`` (or the ``.onnx`` file ``path``); returns the resolved path.

    :func:`steelyard.outputs.write_atomically` does the checks (never over the original model's
    files, an existing model only with ``overwrite``) and the write-beside-then-swap. A model served
    by another runtime (``compress --backend openvino``) is written as that runtime's artifact.
    """
    inputs = (cm.source_path, cm.handle.path)
    runtime = getattr(cm.handle.module, "runtime", None)  # served by steelyard.backends (compress --backend)
    if runtime == "openvino":
        from steelyard.backends.artifact import save_artifact

        return save_artifact(cm.handle.module, cm.handle, path, fidelity=cm.fidelity, overwrite=overwrite)
    if runtime == "torch-compile":  # compiled code is not saved: the torch model is, and compiles again on load
        import dataclasses

        inner = cm.handle.module.model._orig_mod
        cm = dataclasses.replace(cm, handle=cm.handle.with_module(inner), backend="torch")
    if Path(path).suffix == ".onnx":
        if cm.backend != "onnxruntime":
            raise CompressionError(
                f"{Path(path).name}: only an onnxruntime-backend model saves as an .onnx file; give a folder name"
            )
        return write_atomically(path, lambda tmp: tmp.write_bytes(cm.handle.module.model_bytes),
                                overwrite=overwrite, inputs=inputs, folder=False)

    def write(tmp: Path) -> None:
        manifest = build_manifest(cm)
        if cm.backend == "onnxruntime":
            _write_onnx(cm, tmp, manifest)
        else:
            _write_torch(cm, tmp, manifest)
        write_manifest(tmp, manifest)

    return write_atomically(path, write, overwrite=overwrite, inputs=inputs)
