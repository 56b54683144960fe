"""``onnxruntime``: ``torch.onnx`` export, all graph optimizations, fp32 / int8 dynamic / int8 static QDQ.

Export and quantization are :mod:`steelyard.compression.quantization.onnx_backend`'s (one copy);
this adapter gives them the backend interface. The artifact is ``model.onnx``: it loads with
``onnxruntime.InferenceSession`` as well as with steelyard.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from steelyard.backends.base import Availability, Calibration, Inputs, check_precision, mark
from steelyard.compression.base import CalibrationError, CompressionError, first_line
from steelyard.compression.serialization.manifest import ONNX_FILE


class OnnxRuntimeBackend:
    name = "onnxruntime"
    extra = "pip install 'steelyard[compress]' (onnx, onnxruntime)"
    precisions = ("fp32", "int8-dynamic", "int8-static")

    def available(self) -> Availability:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"{first_line(exc)}: {self.extra}")
        return Availability(True)

    def supports(self, precision: str) -> Availability:
        return Availability(True)

    def compile(self, module: nn.Module, example_inputs: Inputs, precision: str = "fp32",
                calibration: Calibration | None = None, threads: int | None = None) -> nn.Module:
        from steelyard.compression.quantization import onnx_backend as ob

        check_precision(self, precision)
        if precision == "int8-static" and (calibration is None or not calibration.batches):
            raise CalibrationError("onnxruntime int8-static needs calibration batches (CLI: --data)")
        with tempfile.TemporaryDirectory(prefix="steelyard-ort-") as tmp:
            fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
            outputs = ob.export_module(module, dict(example_inputs), fp32)
            try:
                with ob._quiet_export():
                    if precision == "int8-dynamic":
                        ob.quantize_dynamic_file(fp32, int8, [], per_channel=True)
                    elif precision == "int8-static":
                        ob.quantize_static_file(fp32, int8, calibration.batches, [], per_channel=True)
            except Exception as exc:
                raise CompressionError(f"onnxruntime {precision} quantization failed: {first_line(exc)}") from exc
            data = (fp32 if precision == "fp32" else int8).read_bytes()
        return mark(ob.OnnxRuntimeModule(data, threads or 0, outputs), self.name, precision)

    def save(self, model: nn.Module, folder: Path) -> dict[str, Any]:
        (folder / ONNX_FILE).write_bytes(model.model_bytes)
        return {"file": ONNX_FILE, "inputs": model.input_names, "outputs": model.output_names}

    def load(self, folder: Path, record: dict[str, Any], threads: int | None = None) -> nn.Module:
        from steelyard.compression.quantization.onnx_backend import OnnxRuntimeModule

        module = OnnxRuntimeModule((folder / ONNX_FILE).read_bytes(), threads or 0, record.get("outputs"))
        return mark(module, self.name, record.get("precision", "fp32"))
