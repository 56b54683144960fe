"""Example inputs for a saved ONNX model, from the session's declared inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig


def session_inputs(module: Any, cfg: LoadConfig) -> dict[str, torch.Tensor]:
    """Example inputs from the session's declared inputs (symbolic dims → batch / sequence)."""
    inputs = {}
    for i, meta in enumerate(module.session.get_inputs()):
        shape = [
            d if isinstance(d, int) and d > 0 else (cfg.inputs.batch_size if j == 0 else cfg.inputs.seq_len)
            for j, d in enumerate(meta.shape)
        ]
        if "int" in meta.type:
            inputs[meta.name] = torch.ones(shape, dtype=torch.int64)
        else:
            inputs[meta.name] = torch.randn(shape, generator=torch.Generator().manual_seed(i))
    return inputs


def fit_to_session(inputs: dict[str, Any], module: Any, cfg: LoadConfig) -> dict[str, Any]:
    """Replace inputs whose shape clashes with the fixed dims the ONNX model was exported with."""
    declared = session_inputs(module, cfg)
    fitted = {}
    for name, example in declared.items():
        given = inputs.get(name)
        fits = (
            given is not None
            and given.dim() == example.dim()
            and all(
                not isinstance(d, int) or d <= 0 or d == g
                for d, g in zip(
                    next(i.shape for i in module.session.get_inputs() if i.name == name), given.shape, strict=False
                )
            )
        )
        fitted[name] = given if fits else example
    return fitted
