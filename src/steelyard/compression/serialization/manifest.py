"""The manifest, ``steelyard_compression.json``: what ran, what changed, and how to rebuild it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from steelyard.errors import CompressionError

if TYPE_CHECKING:
    from steelyard.compression.api import CompressedModel
    from steelyard.models.loading import LoadConfig

MANIFEST = "steelyard_compression.json"
ONNX_FILE = "model.onnx"
FORMAT_VERSION = 1


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def named_inputs(inputs: Any) -> dict[str, torch.Tensor]:
    items = inputs.items() if isinstance(inputs, dict) else ((f"input_{i}", v) for i, v in enumerate(inputs))
    return {k: v for k, v in items if isinstance(v, torch.Tensor)}


def json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, torch.dtype):
        return dtype_name(value)
    return str(value)


def build_manifest(cm: CompressedModel) -> dict[str, Any]:
    """Everything but the structure (added by the backend's writer): methods, sizes, fidelity."""
    import steelyard

    handle = cm.handle
    fidelity = None
    if cm.fidelity is not None:
        f = cm.fidelity
        fidelity = {
            "sqnr_db": f.sqnr_db if f.sqnr_db != float("inf") else "inf",
            "max_abs_error": f.max_abs_error,
            "cosine": f.cosine,
            "agreement": f.agreement,
            "output": f.output,
        }
    return {
        "format": "steelyard-compression",
        "version": FORMAT_VERSION,
        "steelyard": steelyard.__version__,
        "torch": torch.__version__,
        "backend": cm.backend,
        "task": handle.task,
        "source": {
            "name": handle.name,
            "kind": handle.source_kind,
            "path": str(cm.source_path) if cm.source_path else None,
        },
        "model_class": type(handle.module).__name__,
        "methods": list(cm.history),
        "changes": {
            "params_before": cm.params_before,
            "params_after": cm.params_after,
            "bytes_before": int(cm.bytes_before),
            "bytes_after": int(cm.bytes_after),
            "nonzero_after": cm.nonzero_after,
            "notes": list(cm.notes),
        },
        "fidelity": fidelity,
        "example_inputs": {k: list(v.shape) for k, v in named_inputs(handle.inputs).items()},
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=json_default))


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, None when it has none (a plain model folder); unreadable → error."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompressionError(f"cannot read {path}: {exc}") from exc
    if manifest.get("format") != "steelyard-compression" or manifest.get("version", 0) > FORMAT_VERSION:
        raise CompressionError(f"{path} is not a steelyard compression manifest this version can read")
    return manifest


def default_load_config(manifest: dict[str, Any], task: str | None) -> LoadConfig:
    """Example inputs shaped like the ones the model was compressed with."""
    from steelyard.models.loading import LoadConfig
    from steelyard.models.tasks import InputSpec

    shapes = manifest.get("example_inputs") or {}
    first = next(iter(shapes.values()), None)
    if not first:
        return LoadConfig(task=task)
    if len(first) == 4:  # images: batch, channels, height, width
        return LoadConfig(task=task, inputs=InputSpec(batch_size=first[0], image_size=first[2]))
    if len(first) == 2:  # token ids: batch, sequence
        return LoadConfig(task=task, inputs=InputSpec(batch_size=first[0], seq_len=first[1]))
    return LoadConfig(task=task, input_shapes=tuple(tuple(s) for s in shapes.values()))
