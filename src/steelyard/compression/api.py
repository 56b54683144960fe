"""``compress(handle, config)``: one verb for every compression method.

The transform runs on a deep copy: the original module, its config and its files are never
touched. The compressed model is run once on the example input; NaN / Inf in its outputs (or a
crash) is a :class:`~steelyard.errors.CompressionError`, and the outputs are compared with the
original's (:mod:`steelyard.compression.fidelity`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from steelyard.compression.base import NotApplicableError, first_line
from steelyard.compression.fidelity import Fidelity, compare_outputs, non_finite
from steelyard.compression.registry import transform_for
from steelyard.errors import CompressionError
from steelyard.models.handle import ModelHandle
from steelyard.profiling.profile import COMPRESSION_HISTORY_ATTR
from steelyard.profiling.weigh import weigh
from steelyard.units import Bytes

HISTORY_ATTR = COMPRESSION_HISTORY_ATTR  # profile reads it to say what the methods did


@dataclass
class CompressedModel:
    """A compressed copy of a model and what changed.

    ``params_*`` count logical weights (an int8 weight counts like its float original);
    ``bytes_*`` are the weights as held in memory (int8 codes + scales, or the ONNX file).
    ``nonzero_after`` is None where packed codes hide zeros.
    """

    handle: ModelHandle
    method: str
    config: Any
    backend: str
    params_before: int
    params_after: int
    bytes_before: Bytes
    bytes_after: Bytes
    nonzero_before: int | None
    nonzero_after: int | None
    notes: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)
    fidelity: Fidelity | None = None
    history: tuple[dict[str, Any], ...] = ()
    source_path: Path | None = None

    @property
    def size_ratio(self) -> float:
        """bytes before / bytes after (> 1: smaller)."""
        return float(self.bytes_before) / float(self.bytes_after) if self.bytes_after else float("inf")

    @property
    def sparsity(self) -> float | None:
        if self.nonzero_after is None or not self.params_after:
            return None
        return 1.0 - self.nonzero_after / self.params_after

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a ``save_pretrained`` folder (or an ``.onnx`` file for onnxruntime), atomically."""
        from steelyard.compression.saving import save_compressed

        return save_compressed(self, Path(path), overwrite=overwrite)


def _copy_handle(handle: ModelHandle) -> ModelHandle:
    module = copy.deepcopy(handle.module)
    config = getattr(module, "config", None)
    if config is None:
        config = copy.deepcopy(handle.config)
    return dataclasses.replace(handle, module=module, config=config)


def _run(handle: ModelHandle) -> Any:
    module = handle.module
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with torch.inference_mode():
            return handle.forward()
    finally:
        for m, training in modes.items():
            m.training = training


def _check(method: str, original: ModelHandle, compressed: ModelHandle) -> Fidelity:
    reference = _run(original)
    bad, total = non_finite(reference)
    if bad:
        raise CompressionError(
            f"{method}: the original model already outputs {bad} NaN/Inf values of {total} "
            "on the example input; fix the model before compressing it"
        )
    try:
        out = _run(compressed)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise CompressionError(f"{method}: the compressed model fails on the example input: {first_line(exc)}") from exc
    bad, total = non_finite(out)
    if bad:
        raise CompressionError(
            f"{method}: the compressed model outputs {bad} NaN/Inf values of {total} on the "
            "example input; the result is unusable (try a milder setting or float32)"
        )
    try:
        return compare_outputs(reference, out, original.task)
    except (TypeError, ValueError) as exc:
        raise CompressionError(f"{method}: compressed outputs do not match the original's: {first_line(exc)}") from exc


def compress(
    handle: ModelHandle,
    config: Any,
    *,
    data: Iterable[Any] | None = None,
    check: bool = True,
) -> CompressedModel:
    """Apply the method that ``config`` describes to a copy of ``handle``'s model.

    ``data``: batches of model inputs (dicts or tuples like ``handle.inputs``) for methods that
    calibrate (int8 static). ``check``: run the compressed model on the example input, refuse
    NaN/Inf and measure fidelity against the original.
    """
    method, transform = transform_for(config)
    if handle.on_meta:
        raise CompressionError(f"{method} needs real weights; '{handle.name}' holds only shapes (loaded config-only)")
    if hasattr(handle.module, "model_bytes"):
        raise NotApplicableError(
            f"{method}: '{handle.name}' is already an ONNX Runtime model; compress the torch "
            "model and choose backend=onnxruntime last"
        )
    before = weigh(handle.module)
    work = _copy_handle(handle)
    result = transform(work, config, data)
    module = result.module.eval()
    history = (*getattr(handle.module, HISTORY_ATTR, ()), {"method": method, "config": dataclasses.asdict(config)})
    module.__dict__[HISTORY_ATTR] = history
    new_config = result.config if result.config is not None else work.config
    compressed = dataclasses.replace(
        work,
        module=module,
        config=new_config,
        inputs=result.inputs if result.inputs is not None else work.inputs,
        dtype=result.dtype or work.dtype,
        path=None,
        weights_files=[],
    )
    fidelity = _check(method, handle, compressed) if check else None
    after = weigh(module)
    return CompressedModel(
        handle=compressed,
        method=method,
        config=config,
        backend=result.backend,
        params_before=before.parameters.total,
        params_after=after.parameters.total,
        bytes_before=before.bytes,
        bytes_after=after.bytes,
        nonzero_before=before.parameters.nonzero,
        nonzero_after=after.parameters.nonzero,
        notes=tuple(result.notes),
        details=result.details,
        fidelity=fidelity,
        history=history,
        source_path=handle.path,
    )
