"""Serve a compressed torch model in another runtime: the last act of ``compress --backend X``.

The structure steps (pruning, distillation, fine-tuning) run in torch; then the model is handed
to the runtime it will be served with, so that the recipe's after-measurement times the model in
that runtime, interleaved with the original in torch fp32 eager. For OpenVINO a recipe's final
int8 step is NNCF post-training quantization calibrated on the recipe's data (not torch.ao's),
since a torch.ao-quantized model does not convert.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from steelyard.backends.base import Calibration, run_module
from steelyard.backends.check import check_outputs
from steelyard.compression.base import CalibrationError
from steelyard.errors import ConfigError

if TYPE_CHECKING:
    from steelyard.compression.api import CompressedModel
    from steelyard.compression.recipe import Recipe
    from steelyard.compression.recipe.data import RecipeData

#: Runtimes ``compress --backend`` can serve the compressed model with (beyond a quantization step's own backend).
SERVING = ("torch-compile", "openvino")
#: The runtimes a search tries by default (``optimize --backend all``): torch.compile's per-trial compile
#: time is left out unless named.
SEARCHED = ("torch", "onnxruntime", "openvino")
#: What a search trial's ``precision=int8-dynamic`` runs as in each searched runtime (:func:`route`): the
#: quantization step's own dynamic int8 in torch and ONNX Runtime, NNCF's calibrated int8 in OpenVINO.
SEARCHED_INT8 = {"torch": "int8-dynamic", "onnxruntime": "int8-dynamic", "openvino": "int8"}


def check_serving(backend: str, quantizes: bool) -> None:
    """Before any work: the runtime is installed and can run what the recipe ends with."""
    from steelyard.backends.registry import require_backend

    if backend not in SERVING:
        raise ConfigError(f"cannot serve in '{backend}': choose one of {', '.join(SERVING)}")
    if backend == "torch-compile" and quantizes:
        raise ConfigError("--backend torch-compile serves float models: drop the quantization step, or use "
                          "--backend torch / onnxruntime / openvino for int8")
    require_backend(backend)


def route(recipe: Recipe, backend: str | None, *, check_installed: bool = True,
          float_onnx: bool = False) -> tuple[Recipe, str | None]:
    """A ``--backend`` (or a search trial's ``backend``) applied to a recipe: the recipe to run and the
    runtime to serve it in. torch / onnxruntime are the kernels of the recipe's quantization step; the
    :data:`SERVING` runtimes take the model after the steps. ``float_onnx``: a recipe without a
    quantization step is served in ONNX Runtime fp32 (a search's runtime dimension) instead of refused
    (``compress``). Impossible pairs are a ConfigError."""
    if backend is None:
        return recipe, None
    if backend not in ("torch", "onnxruntime", *SERVING):
        raise ConfigError(f"--backend must be torch, onnxruntime, {' or '.join(SERVING)}, got '{backend}'")
    if backend in SERVING:
        if check_installed:
            check_serving(backend, recipe.steps[-1].quantizes)
        elif backend == "torch-compile" and recipe.steps[-1].quantizes:
            raise ConfigError("torch-compile serves float models, and the recipe ends with a quantization step")
        return recipe, backend
    if not any(s.quantizes and hasattr(s.config, "backend") for s in recipe.steps):
        if float_onnx and backend == "onnxruntime":
            return recipe, backend
        raise ConfigError("--backend applies to an int8 quantization step, and the recipe has none")
    return recipe.with_backend(backend), None


def serve_in(backend_name: str, compressed: CompressedModel, inputs: dict[str, Any], data: RecipeData | None,
             *, int8: bool, calibration_batches: int, batch_size: int, threads: int | None) -> CompressedModel:
    """``compressed`` with its module replaced by the runtime model (outputs checked against the torch one)."""
    from steelyard.backends.registry import require_backend

    backend = require_backend(backend_name)
    precision = "int8" if int8 else "fp32"
    calibration = None
    if int8:
        if data is None:
            raise CalibrationError(f"{backend_name} int8 calibrates on the recipe's data: pass --data")
        calibration = Calibration(data.batches(batch_size, calibration_batches, with_labels=False))
    torch_model = compressed.handle.module.eval()
    model = backend.compile(torch_model, inputs, precision, calibration, threads)
    check_outputs(run_module(torch_model, inputs), run_module(model, inputs), precision, compressed.handle.task,
                  f"{backend_name} {precision}")
    what = (f"int8 by NNCF post-training quantization in OpenVINO, calibrated on {len(calibration.batches)} batches"
            if calibration is not None else f"{precision}")
    note = f"served with {backend_name} ({what}); timed in that runtime against the original in torch fp32 eager"
    from steelyard.compression.recipe.measure import size_card

    return dataclasses.replace(compressed, handle=compressed.handle.with_module(model), backend=backend_name,
                               bytes_after=size_card(model).bytes, notes=(*compressed.notes, note))
