"""``openvino``: ``openvino.convert_model`` from the torch module, NNCF for int8.

* fp32: the converted model compiled for the CPU plugin with ``INFERENCE_PRECISION_HINT=f32``
  (the plugin would otherwise pick bf16 by itself on a CPU that has it).
* bf16: the same model with ``INFERENCE_PRECISION_HINT=bf16``, offered only where the plugin
  lists BF16 among its optimization capabilities.
* int8: NNCF post-training quantization (``nncf.quantize``, transformer preset) calibrated on the
  user's batches; with ``Calibration.max_drop`` and validation batches, NNCF's accuracy-aware
  ``nncf.quantize_with_accuracy_control`` reverts layers to float until the drop is within it.

The artifact is an IR folder (``model.xml`` + ``model.bin``) that ``openvino.Core().read_model``
reads as well as steelyard.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from steelyard.backends.base import Availability, Calibration, Inputs, RuntimeOutput, check_precision, feed, mark
from steelyard.compression.base import CalibrationError, CompressionError, first_line
from steelyard.profiling.weigh import HeldWeights

IR_FILE = "model.xml"
EXTRA = "pip install 'steelyard[runtimes]' (openvino, nncf)"


def _ov() -> Any:
    import openvino

    return openvino


class OpenVINOModule(nn.Module):
    """An OpenVINO model compiled for the CPU behind the original forward signature."""

    def __init__(self, ov_model: Any, precision: str = "fp32", threads: int | None = None) -> None:
        super().__init__()
        self.ov_model = ov_model
        self.threads = threads or torch.get_num_threads()
        hint = "bf16" if precision == "bf16" else "f32"
        config = {"INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": hint}
        self.compiled = _ov().Core().compile_model(ov_model, "CPU", config)
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]

    def forward(self, *args: Any, **kwargs: Any) -> RuntimeOutput:
        result = self.compiled(feed(self.input_names, args, kwargs))
        return RuntimeOutput({name: torch.from_numpy(np.asarray(result[i]))
                              for i, name in enumerate(self.output_names)})

    def steelyard_weight(self) -> HeldWeights:
        """The graph's constants (its weights) per element type: int8 codes after NNCF, fp32 otherwise."""
        params: dict[str, int] = {}
        nbytes: dict[str, int] = {}
        for op in self.ov_model.get_ops():
            if op.get_type_name() != "Constant":
                continue
            dtype = np.dtype(op.get_output_element_type(0).to_dtype())
            n = math.prod(op.get_output_shape(0))
            params[dtype.name] = params.get(dtype.name, 0) + n
            nbytes[dtype.name] = nbytes.get(dtype.name, 0) + n * dtype.itemsize
        return HeldWeights(params, nbytes)

    def steelyard_record(self) -> dict[str, Any]:
        return {"kind": "openvino", "inputs": self.input_names, "outputs": self.output_names}


def _numpy_batch(names: list[str]) -> Any:
    def transform(batch: Any) -> dict[str, np.ndarray]:
        inputs = batch[0] if isinstance(batch, tuple) else batch
        return {k: v.detach().cpu().numpy() for k, v in inputs.items() if k in names}

    return transform


def _accuracy(names: list[str]) -> Any:
    """NNCF's validation_fn: accuracy of a compiled model over (inputs, labels) batches."""
    transform = _numpy_batch(names)

    def validate(compiled: Any, data: Any) -> float:
        right = total = 0
        for inputs, labels in data:
            logits = np.asarray(compiled(transform(inputs))[0])
            right += int((logits.argmax(-1) == labels.numpy()).sum())
            total += len(labels)
        return right / max(total, 1)

    return validate


def quantize_int8(ov_model: Any, calibration: Calibration | None) -> Any:
    """NNCF post-training int8 (accuracy-aware when ``max_drop`` and validation data are given)."""
    import nncf

    if calibration is None or not calibration.batches:
        raise CalibrationError("openvino int8 needs calibration batches of the user's data (CLI: --data)")
    names = [i.get_any_name() for i in ov_model.inputs]
    dataset = nncf.Dataset(calibration.batches, _numpy_batch(names))
    common = {"model_type": nncf.ModelType.TRANSFORMER, "subset_size": len(calibration.batches)}
    try:
        if calibration.max_drop is None:
            return nncf.quantize(ov_model, dataset, **common)
        if not calibration.validation:
            raise CalibrationError("openvino int8 with a max drop needs labelled validation batches")
        validation = nncf.Dataset(calibration.validation)
        return nncf.quantize_with_accuracy_control(
            ov_model, dataset, validation, _accuracy(names), max_drop=calibration.max_drop,
            drop_type=nncf.DropType.ABSOLUTE, **common)
    except CalibrationError:
        raise
    except Exception as exc:  # NNCF raises many kinds
        raise CompressionError(f"NNCF int8 quantization failed: {first_line(exc)}") from exc


class OpenVINOBackend:
    name = "openvino"
    extra = EXTRA
    precisions = ("fp32", "bf16", "int8")

    def available(self) -> Availability:
        try:
            import openvino  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"{first_line(exc)}: {EXTRA}")
        return Availability(True)

    def supports(self, precision: str) -> Availability:
        if precision == "int8":
            try:
                import nncf  # noqa: F401
            except ImportError as exc:
                return Availability(False, f"openvino int8 needs NNCF ({first_line(exc)}): {EXTRA}")
        if precision == "bf16":
            caps = _ov().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if "BF16" not in caps:
                return Availability(False, f"the OpenVINO CPU plugin offers no BF16 here (capabilities: "
                                           f"{', '.join(caps)})")
        return Availability(True)

    def convert(self, module: nn.Module, example_inputs: Inputs) -> Any:
        """``openvino.convert_model`` traced on the example inputs (shapes stay dynamic)."""
        try:
            with torch.no_grad():
                return _ov().convert_model(module.eval(), example_input=dict(example_inputs))
        except Exception as exc:  # conversion errors name the op that failed
            raise CompressionError(f"OpenVINO conversion of {type(module).__name__} failed: "
                                   f"{first_line(exc)}") from exc

    def compile(self, module: nn.Module, example_inputs: Inputs, precision: str = "fp32",
                calibration: Calibration | None = None, threads: int | None = None) -> nn.Module:
        check_precision(self, precision)
        if precision == "int8" and (calibration is None or not calibration.batches):
            raise CalibrationError("openvino int8 needs calibration batches of the user's data (CLI: --data)")
        ov_model = self.convert(module, example_inputs)
        if precision == "int8":
            ov_model = quantize_int8(ov_model, calibration)
        return mark(OpenVINOModule(ov_model, precision, threads), self.name, precision)

    def save(self, model: nn.Module, folder: Path) -> dict[str, Any]:
        _ov().save_model(model.ov_model, str(folder / IR_FILE), compress_to_fp16=False)
        return {"file": IR_FILE, **model.steelyard_record()}

    def load(self, folder: Path, record: dict[str, Any], threads: int | None = None) -> nn.Module:
        ov_model = _ov().Core().read_model(str(folder / IR_FILE))
        precision = record.get("precision", "fp32")
        return mark(OpenVINOModule(ov_model, precision, threads), self.name, precision)
