"""Memory estimates: weights, activations, KV cache and the whole bill of training.

Training memory = weights + gradients + optimizer states + saved activations. Activations are
not guessed from a formula: the forward is run (on meta when there are no weights) under
``saved_tensors_hooks`` and the tensors autograd keeps for backward are added up.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from steelyard.errors import ConfigError
from steelyard.families.scan import vectorised_scans
from steelyard.models.handle import ModelHandle
from steelyard.profiling.op_table import run_op
from steelyard.profiling.report import TrainingMemory
from steelyard.units import Bytes

#: fp32 values the optimizer keeps per parameter (Adam/AdamW: first and second moments).
OPTIMIZER_STATES_PER_PARAM: dict[str, int] = {
    "adamw": 2,
    "adam": 2,
    "rmsprop": 1,
    "sgd": 1,
    "sgd-nomomentum": 0,
}
PRECISIONS = ("float32", "mixed")


def meta_twin(handle: ModelHandle) -> ModelHandle | None:
    """The same architecture on the meta device, for traces that must not touch real memory.

    Hugging Face models are rebuilt from their config; anything else gives None (the caller
    then traces the real module and restores its buffers).
    """
    if handle.on_meta:
        return handle
    if handle.config is None or handle.source_kind == "factory" or not isinstance(handle.inputs, dict):
        return None
    from steelyard.models.hf import build_on_meta

    try:
        module = build_on_meta(handle.config, handle.task, handle.dtype)
    except Exception:
        return None
    inputs = {k: torch.empty_like(v, device="meta") for k, v in handle.inputs.items()
              if isinstance(v, torch.Tensor) and k != "attention_mask"}
    return handle.with_module(module, inputs)


def saved_activation_bytes(handle: ModelHandle) -> int:
    """Bytes of tensors autograd saves for backward during one training forward.

    Storages are counted once (a tensor saved by two ops, or a view of one, is one buffer);
    parameters and inputs are excluded because they are counted elsewhere. The trace runs on
    a meta twin when one can be built, so a large model allocates nothing; otherwise on the
    real module, whose buffers (BatchNorm running statistics) are restored afterwards.
    """
    twin = meta_twin(handle)
    if twin is not None:
        return _saved_bytes(twin)
    buffers = {name: b.detach().clone() for name, b in handle.module.named_buffers()}
    try:
        return _saved_bytes(handle)
    finally:
        with torch.no_grad():
            for name, b in handle.module.named_buffers():
                b.copy_(buffers[name])


def _saved_bytes(handle: ModelHandle) -> int:
    from torch.multiprocessing.reductions import StorageWeakRef

    excluded = {StorageWeakRef(p.untyped_storage()).cdata for p in handle.module.parameters()}
    excluded |= {StorageWeakRef(t.untyped_storage()).cdata for t in handle.input_tensors()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = StorageWeakRef(storage).cdata
        if key not in excluded:
            seen[key] = storage.nbytes()
        return t

    was_training = handle.module.training
    handle.module.train()
    try:
        # On meta, Mamba's per-token scan runs vectorised (as when counting); in float32 it saves the same storages.
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad(), _MetaOutputs(), \
                vectorised_scans():
            out = handle.forward()
        del out
    finally:
        handle.module.train(was_training)
    return sum(seen.values())


class _MetaOutputs(TorchDispatchMode):
    """Ops whose meta kernel refuses a dtype (``_grouped_mm`` in float32) get their output from shapes."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return run_op(func, args, kwargs or {})


def training_memory(
    handle: ModelHandle, optimizer: str = "adamw", precision: str = "mixed", activations: int | None = None
) -> TrainingMemory:
    """Memory to fine-tune every trainable parameter with ``optimizer``.

    ``mixed`` precision keeps fp32 master weights, fp32 optimizer states and half-precision
    gradients and activations (the usual AMP recipe); ``float32`` keeps everything in fp32.
    """
    if optimizer not in OPTIMIZER_STATES_PER_PARAM:
        valid = ", ".join(OPTIMIZER_STATES_PER_PARAM)
        raise ConfigError(f"unknown optimizer '{optimizer}'; choose one of: {valid}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    params = sum(p.numel() for p in handle.module.parameters())
    trainable = sum(p.numel() for p in handle.module.parameters() if p.requires_grad)
    grad_bytes = 2 if precision == "mixed" else 4
    weights = params * 4 + (params * 2 if precision == "mixed" else 0)  # fp32 master (+ half copy)
    gradients = trainable * grad_bytes
    states = trainable * 4 * OPTIMIZER_STATES_PER_PARAM[optimizer]
    if activations is None:
        activations = saved_activation_bytes(handle)
    if precision == "mixed" and handle.dtype == torch.float32:
        activations //= 2  # saved in half precision under autocast
    total = weights + gradients + states + activations
    return TrainingMemory(
        optimizer=optimizer,
        precision=precision,
        weights=Bytes(weights),
        gradients=Bytes(gradients),
        optimizer_states=Bytes(states),
        activations=Bytes(activations),
        total=Bytes(total),
        batch_size=handle.batch_size,
    )
