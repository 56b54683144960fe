"""The backend interface: a runtime that turns a PyTorch module into a callable with the same forward.

A :class:`Backend` is stateless: ``compile`` returns an ``nn.Module`` (so the latency harness,
``handle.forward`` and the evaluators call it unchanged) whose ``forward`` takes the original
inputs and returns the original's outputs by name (``out.logits``). The module carries
``runtime`` and ``precision`` attributes so that a saved artifact and a report can say what it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from steelyard.errors import SteelyardError

#: Precisions a backend may offer. ``int8`` means calibrated post-training quantization in the
#: runtime's own tool (NNCF for OpenVINO); ``int8-static`` is ONNX Runtime's QDQ calibration.
PRECISIONS = ("fp32", "bf16", "int8-dynamic", "int8-static", "int8")

Inputs = Mapping[str, torch.Tensor]


class RuntimeMismatchError(SteelyardError):
    """A runtime's outputs disagree with torch beyond tolerance: a failure, never a speedup."""


@dataclass(frozen=True)
class Availability:
    """Whether a backend (or one of its precisions) runs here; ``reason`` says why not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass
class Calibration:
    """The user's data for calibrated precisions.

    ``batches``: model-input dicts for activation ranges. ``validation``: (inputs, labels) batches
    and ``max_drop`` (absolute accuracy drop, 0.01 = one point) turn on accuracy-aware quantization
    where the backend has it (NNCF's ``quantize_with_accuracy_control``).
    """

    batches: list[dict[str, torch.Tensor]]
    validation: list[tuple[dict[str, torch.Tensor], torch.Tensor]] | None = None
    max_drop: float | None = None


class RuntimeOutput(dict):
    """Outputs by name, also readable as attributes (``out.logits``) like a transformers output."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@runtime_checkable
class Backend(Protocol):
    """One runtime. ``extra`` names the pip extra that installs it (for the "not installed" line)."""

    name: str
    extra: str
    precisions: tuple[str, ...]

    def available(self) -> Availability: ...

    def supports(self, precision: str) -> Availability: ...

    def compile(self, module: nn.Module, example_inputs: Inputs, precision: str = "fp32",
                calibration: Calibration | None = None, threads: int | None = None) -> nn.Module: ...

    def save(self, model: nn.Module, folder: Path) -> dict[str, Any]: ...

    def load(self, folder: Path, record: dict[str, Any], threads: int | None = None) -> nn.Module: ...


def mark(model: nn.Module, runtime: str, precision: str) -> nn.Module:
    """Tag a runtime model with what runs it (read by :mod:`.artifact` and the reports)."""
    model.runtime = runtime
    model.precision = precision
    return model


def feed(input_names: list[str], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Positional and keyword inputs → numpy arrays by the runtime's input names; extra keys are dropped."""
    given: dict[str, Any] = dict(zip(input_names, args, strict=False))
    given.update({k: v for k, v in kwargs.items() if k in input_names})
    missing = [n for n in input_names if n not in given]
    if missing:
        raise ValueError(f"the runtime model needs inputs {missing}")
    return {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in given.items()}


def run_module(module: Callable[..., Any], inputs: Inputs | tuple[torch.Tensor, ...]) -> Any:
    with torch.inference_mode():
        return module(**inputs) if isinstance(inputs, Mapping) else module(*inputs)


def check_precision(backend: Backend, precision: str) -> None:
    """Refuse, in one line, a precision this backend lacks or cannot run on this machine."""
    from steelyard.errors import ConfigError

    if precision not in backend.precisions:
        raise ConfigError(f"backend {backend.name} has no precision '{precision}'; "
                          f"choose one of: {', '.join(backend.precisions)}")
    ok = backend.supports(precision)
    if not ok:
        raise ConfigError(f"backend {backend.name} cannot run {precision} here: {ok.reason}")
