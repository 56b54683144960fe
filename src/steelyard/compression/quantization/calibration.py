"""Run calibration batches through a float model and watch the inputs/outputs of chosen layers."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import CalibrationError, first_line
from steelyard.compression.quantization.observers import MinMaxObserver, make_observer
from steelyard.models.handle import ModelHandle


def calibration_batches(data: Iterable[Any] | None, limit: int, method: str, *, missing: str | None = None,
                        empty: str | None = None) -> list[Any]:
    """At most ``limit`` input batches (dicts or tuples like ``handle.inputs``).

    No data, or data without a batch, is a :class:`CalibrationError`; ``missing`` / ``empty`` word
    it for methods other than static quantization (e.g. gradient importance).
    """
    if data is None:
        raise CalibrationError(missing or (
            f"{method} needs calibration data: pass data=<batches of model inputs> (CLI: --data); "
            "or use quantize:int8-dynamic, which needs none"
        ))
    if isinstance(data, (dict, torch.Tensor)):
        data = [data]
    batches = list(islice(iter(data), limit))
    if not batches:
        raise CalibrationError(empty or f"{method}: the calibration data holds no batch")
    return batches


def observe_layers(
    handle: ModelHandle,
    layers: list[tuple[str, nn.Module]],
    batches: list[Any],
    observer: str,
    percentile: float,
    method: str,
) -> dict[str, tuple[MinMaxObserver, MinMaxObserver]]:
    """(input observer, output observer) per layer name, fed by forward hooks."""
    seen = {name: (make_observer(observer, percentile), make_observer(observer, percentile)) for name, _ in layers}
    hooks = []
    for name, module in layers:

        def hook(_m: nn.Module, args: tuple[Any, ...], out: torch.Tensor, name: str = name) -> None:
            seen[name][0].observe(args[0])
            seen[name][1].observe(out)

        hooks.append(module.register_forward_hook(hook))
    feed_calibration(handle, batches, hooks, method)
    return seen


def feed_calibration(handle: Any, batches: list[Any], hooks: list[Any], method: str,
                     before_batch: Any = None) -> None:
    """Run the calibration batches through the model while ``hooks`` record what they need, then remove
    the hooks (also on failure); a batch the model rejects is a one-line :class:`CalibrationError`.
    ``before_batch`` (no arguments) resets per-batch state of the hooks."""
    try:
        with torch.inference_mode():
            for batch in batches:
                if before_batch is not None:
                    before_batch()
                handle.forward(batch)
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise CalibrationError(f"{method}: the model rejected a calibration batch: {first_line(exc)}") from exc
    finally:
        for h in hooks:
            h.remove()
