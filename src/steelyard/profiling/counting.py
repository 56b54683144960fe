"""Count one forward (or one training step) of a module: the single entry to :class:`CostCounter`.

Every caller that wants "the FLOPs of this model on these inputs" — profile, recipes,
distillation, training, comparison — comes here, so mode handling is decided once:

* **inference** (``training=False``): the module is put in eval mode for the count (dropout off,
  as served) and run under ``inference_mode``; its previous mode is restored afterwards;
* **training** (``training=True``): train mode, gradients on, forward and the backward of a
  scalar reduced from the output, so backward matmuls are counted too; gradients are cleared and
  the random state restored afterwards, so counting changes neither the weights' grads nor what
  a run goes on to train.

Inputs are a mapping (keyword arguments), a sequence (positional) or one tensor. Meta tensors
work in both modes: the counter prices shapes, not values (on meta, Mamba's per-token scan loop runs
vectorised, :func:`steelyard.families.scan.vectorised_scans`, at the same price).

A module whose work runs outside torch (an ONNX Runtime session) counts itself through the
**count protocol** (:class:`CountsItself`), as it weighs itself through the size protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from steelyard.families.scan import vectorised_scans
from steelyard.profiling.counter import CausalCounting, CostCounter, CountResult
from steelyard.units import Flops

Inputs = Mapping[str, Any] | Sequence[Any] | torch.Tensor


@runtime_checkable
class CountsItself(Protocol):
    """A module the aten-level counter cannot see into: it prices one inference forward itself."""

    def steelyard_count(self, inputs: Inputs) -> CountResult: ...


def call(module: torch.nn.Module, inputs: Inputs) -> Any:
    """``module(**inputs)`` for a mapping, ``module(*inputs)`` for a sequence, ``module(inputs)`` for a tensor."""
    if isinstance(inputs, torch.Tensor):
        return module(inputs)
    if isinstance(inputs, Mapping):
        return module(**inputs)
    return module(*inputs)


def rows(inputs: Inputs) -> int:
    """Batch rows of ``inputs``: the first dimension of the first tensor (1 when there is none)."""
    values = [inputs] if isinstance(inputs, torch.Tensor) else (
        list(inputs.values()) if isinstance(inputs, Mapping) else list(inputs))
    first = next((v for v in values if isinstance(v, torch.Tensor) and v.dim()), None)
    return int(first.shape[0]) if first is not None else 1


def scalar_loss(output: Any) -> torch.Tensor:
    """A scalar to run backward from: the sum of the logits, hidden states or first output."""
    if isinstance(output, torch.Tensor):
        return output.float().sum()
    if getattr(output, "logits", None) is not None:
        return output.logits.float().sum()
    if getattr(output, "last_hidden_state", None) is not None:
        return output.last_hidden_state.float().sum()
    first = output[0] if isinstance(output, (tuple, list)) else next(iter(output.values()))
    return first.float().sum()


def count_forward(
    module: torch.nn.Module,
    inputs: Inputs,
    *,
    causal_attention: CausalCounting = "full",
    training: bool = False,
) -> CountResult:
    """What one forward of ``module`` on ``inputs`` costs (forward + backward with ``training=True``)."""
    if isinstance(module, CountsItself):
        if training:
            raise NotImplementedError(f"{type(module).__name__} runs outside torch: it has no backward to count")
        return module.steelyard_count(inputs)
    was_training = module.training
    module.train(training)
    try:
        if not training:
            with vectorised_scans(), torch.inference_mode(), CostCounter(module, causal_attention) as counter:
                call(module, inputs)
            return counter.result
        with vectorised_scans(), torch.random.fork_rng(devices=[]), torch.enable_grad(), \
                CostCounter(module, causal_attention) as counter:
            scalar_loss(call(module, inputs)).backward()
        return counter.result
    finally:
        if training:
            module.zero_grad(set_to_none=True)
        module.train(was_training)


def flops_per_row(module: torch.nn.Module, inputs: Inputs, *, training: bool = False) -> Flops:
    """Matrix-class FLOPs of one counted forward (or step) divided by the batch rows."""
    return Flops(count_forward(module, inputs, training=training).flops / max(rows(inputs), 1))
