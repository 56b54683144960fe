"""ONNX Runtime backend: export with ``torch.onnx``, quantize with ``onnxruntime.quantization``.

Exporter: the TorchScript one (``dynamo=False``) is the default here. Both exporters of torch 2.13
export Hugging Face BERT correctly (same outputs to 1e-8), but the torch.export-based one took
~17 s for a 2-layer toy BERT against ~1.4 s for TorchScript on this 2-core CPU; TorchScript export
is deprecated upstream, so ``exporter=dynamo`` is one option away and is used when the TorchScript
exporter is gone.

The result runs in :class:`OnnxRuntimeModule`, an ``nn.Module`` whose ``forward`` takes the same
inputs as the original model, so ``handle.forward()`` and the latency harness time it unchanged.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steelyard.backends.base import RuntimeOutput
from steelyard.compression.base import (
    HEAD_NAMES,
    BackendUnavailableError,
    CompressionError,
    TransformResult,
    first_line,
)
from steelyard.compression.quantization.calibration import calibration_batches
from steelyard.compression.quantization.config import DynamicQuantConfig, StaticQuantConfig
from steelyard.models.handle import ModelHandle
from steelyard.profiling.counter import CountResult
from steelyard.profiling.weigh import HeldWeights

OPSET = 17


def require_onnxruntime() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxruntime.quantization
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend=onnxruntime needs onnx and onnxruntime ({first_line(exc)}): "
            "pip install 'steelyard[compress]', or use backend=torch"
        ) from exc
    return onnxruntime


class OnnxRuntimeModule(nn.Module):
    """An ONNX Runtime session behind the original model's forward signature."""

    def __init__(self, model_bytes: bytes, threads: int = 0, output_names: list[str] | None = None):
        super().__init__()
        self.model_bytes = model_bytes
        self.threads = threads
        self._output_names = output_names
        self._start()

    def _start(self) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads spin by default: in interleaved A/B rounds they would steal the cores the
        # next candidate is timed on, so they sleep instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(self.model_bytes, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = self._output_names or [o.name for o in self.session.get_outputs()]

    def forward(self, *args: Any, **kwargs: Any) -> RuntimeOutput:
        feed: dict[str, Any] = {}
        for name, value in zip(self.input_names, args, strict=False):
            feed[name] = value
        for name, value in kwargs.items():
            if name in self.input_names:
                feed[name] = value
        missing = [n for n in self.input_names if n not in feed]
        if missing:
            raise ValueError(f"the ONNX model needs inputs {missing}")
        arrays = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in feed.items()}
        outs = self.session.run(None, arrays)
        return RuntimeOutput({name: torch.from_numpy(o) for name, o in zip(self.output_names, outs, strict=False)})

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__().copy()
        state.pop("session", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._start()

    def steelyard_weight(self) -> HeldWeights:
        """The graph's initializers per ONNX dtype; scales and zero points are bytes, not parameters.

        The rest of the file (graph structure, small constants) is not weight memory; the file's
        size is the profile's bytes on disk."""
        from steelyard.profiling.onnx_graph import onnx_weights

        return onnx_weights(self.model_bytes)

    def steelyard_count(self, inputs: Any) -> CountResult:
        """The session's work, priced on its ONNX graph at these inputs' shapes (torch never runs it)."""
        from steelyard.profiling.onnx_graph import count_onnx

        named = dict(zip(self.input_names, inputs, strict=False)) if isinstance(inputs, (tuple, list)) else inputs
        if isinstance(named, torch.Tensor):
            named = {self.input_names[0]: named}
        return count_onnx(self.model_bytes, {k: tuple(v.shape) for k, v in named.items() if k in self.input_names})

    def steelyard_record(self) -> dict[str, Any]:
        return {"kind": "onnxruntime", "inputs": self.input_names, "outputs": self.output_names}


# -- export ------------------------------------------------------------------------------------
@contextmanager
def _quiet_export() -> Any:
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # onnxruntime.quantization logs "consider pre-processing" at WARNING
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _output_names(module: nn.Module, inputs: Any) -> list[str]:
    with torch.inference_mode():
        out = module(**inputs) if isinstance(inputs, dict) else module(*inputs)
    if isinstance(out, torch.Tensor):
        return ["output"]
    if isinstance(out, Mapping) or hasattr(out, "keys"):
        return [str(k) for k, v in out.items() if isinstance(v, torch.Tensor)]
    if isinstance(out, (tuple, list)):
        return [f"output_{i}" for i, v in enumerate(out) if isinstance(v, torch.Tensor)]
    return []


def _dims(t: torch.Tensor) -> list[int]:
    """Dynamic axes: the batch, and the sequence for 2-D integer inputs (token ids, masks)."""
    return [0, 1] if t.dim() == 2 and not t.is_floating_point() else [0]


class _Positional(nn.Module):
    """Calls the model with keyword inputs from positional tensors and returns a tuple of tensors.

    Both exporters trace positional tensors most reliably; Hugging Face ``forward`` methods take
    many optional keywords (the TorchScript exporter mixes them up for ``BertModel``).
    """

    def __init__(self, model: nn.Module, keys: list[str] | None, outputs: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys
        self.outputs = outputs

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*tensors) if self.keys is None else self.model(**dict(zip(self.keys, tensors, strict=True)))
        if isinstance(out, torch.Tensor):
            return (out,)
        if isinstance(out, Mapping) or hasattr(out, "keys"):
            return tuple(out[k] for k in self.outputs)
        return tuple(v for v in out if isinstance(v, torch.Tensor))


def export_onnx(handle: ModelHandle, path: Path, exporter: str = "torchscript") -> list[str]:
    """Export the handle's module with its example inputs; returns the output names."""
    return export_module(handle.module, handle.inputs, path, exporter)


def export_module(module: nn.Module, inputs: Any, path: Path, exporter: str = "torchscript") -> list[str]:
    """Export ``module`` traced on ``inputs`` (a dict or a tuple of tensors); returns the output names."""
    module = module.eval()
    if isinstance(inputs, dict):
        names = [k for k, v in inputs.items() if isinstance(v, torch.Tensor)]
        tensors = [inputs[k] for k in names]
        keys: list[str] | None = names
    else:
        names = [f"input_{i}" for i in range(len(inputs))]
        tensors, keys = list(inputs), None
    outputs = _output_names(module, inputs)
    if not outputs:
        raise CompressionError("ONNX export: the model returns no tensor to export")
    wrapper = _Positional(module, keys, outputs).eval()
    try:
        with _quiet_export(), torch.no_grad():
            if exporter == "dynamo":
                auto = torch.export.Dim.AUTO
                shapes = tuple({d: auto for d in _dims(t)} for t in tensors)
                torch.onnx.export(
                    wrapper,
                    tuple(tensors),
                    str(path),
                    input_names=names,
                    output_names=outputs,
                    dynamic_shapes=(shapes,),
                    dynamo=True,
                    opset_version=18,
                )
            else:
                axes = {k: {d: f"{k}_dim{d}" for d in _dims(t)} for k, t in zip(names, tensors, strict=True)}
                axes.update({o: {0: "batch"} for o in outputs})
                torch.onnx.export(
                    wrapper,
                    tuple(tensors),
                    str(path),
                    input_names=names,
                    output_names=outputs,
                    dynamic_axes=axes,
                    dynamo=False,
                    opset_version=OPSET,
                )
    except Exception as exc:  # exporters raise many kinds; all mean "this model does not export"
        raise CompressionError(f"ONNX export ({exporter}) failed: {first_line(exc)}") from exc
    if not path.exists():
        raise CompressionError(f"ONNX export ({exporter}) wrote no file")
    return outputs


def _head_nodes(onnx_path: Path, handle: ModelHandle) -> list[str]:
    import onnx

    heads = {name.split(".")[0] for name, _ in handle.module.named_modules() if name.split(".")[0] in HEAD_NAMES}
    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if any(n.name.startswith(f"/{h}/") for h in heads)]


def _quantized(handle: ModelHandle, cfg: Any, quantize: Any) -> TransformResult:
    require_onnxruntime()
    with tempfile.TemporaryDirectory(prefix="steelyard-onnx-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        outputs = export_onnx(handle, fp32, cfg.exporter)
        exclude = [] if cfg.include_head else _head_nodes(fp32, handle)
        try:
            with _quiet_export():
                quantize(fp32, int8, exclude)
        except CompressionError:
            raise
        except Exception as exc:
            raise CompressionError(f"onnxruntime quantization failed: {first_line(exc)}") from exc
        size_fp32 = fp32.stat().st_size
        try:
            module = OnnxRuntimeModule(int8.read_bytes(), cfg.threads, outputs)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CompressionError(f"onnxruntime cannot load the quantized model: {first_line(exc)}") from exc
    return TransformResult(
        module=module,
        backend="onnxruntime",
        details={
            "onnx_fp32_bytes": size_fp32,
            "onnx_int8_bytes": len(module.model_bytes),
            "exporter": cfg.exporter,
            "excluded_nodes": len(exclude),
        },
    )


def apply_dynamic(handle: ModelHandle, cfg: DynamicQuantConfig, data: Any = None) -> TransformResult:
    def quantize(src: Path, dst: Path, exclude: list[str]) -> None:
        quantize_dynamic_file(src, dst, exclude, per_channel=cfg.per_channel, embeddings=cfg.embeddings)

    result = _quantized(handle, cfg, quantize)
    result.notes = [
        f"exported with torch.onnx ({cfg.exporter}); MatMul/Gemm{'/Gather' if cfg.embeddings else ''} weights int8 "
        f"({'per channel' if cfg.per_channel else 'per tensor'}), activations quantized at run time "
        "by ONNX Runtime",
        "runs in an onnxruntime InferenceSession (save writes an .onnx file)",
    ]
    return result


def quantize_dynamic_file(src: Path, dst: Path, exclude: list[str], *, per_channel: bool = False,
                          embeddings: bool = False) -> None:
    """int8 weights of MatMul/Gemm (and Gather with ``embeddings``); activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        per_channel=per_channel,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude or None,
        op_types_to_quantize=None if embeddings else ["MatMul", "Gemm"],
    )


def quantize_static_file(src: Path, dst: Path, batches: list[Any], exclude: list[str], *, per_channel: bool = False,
                         observer: str = "minmax", percentile: float = 99.99) -> None:
    """int8 weights and activations as QDQ pairs, activation ranges calibrated on ``batches``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    names = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(batches, names)
    calibrate = CalibrationMethod.Percentile if observer == "percentile" else CalibrationMethod.MinMax
    extra = {"CalibPercentile": percentile} if observer == "percentile" else {}
    quantize_static(
        src,
        dst,
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=calibrate,
        nodes_to_exclude=exclude or None,
        extra_options=extra,
    )


class _Reader:
    """A CalibrationDataReader over the calibration batches."""

    def __init__(self, batches: list[Any], names: list[str]) -> None:
        feeds = []
        for batch in batches:
            items = batch.items() if isinstance(batch, dict) else zip(names, batch, strict=False)
            feeds.append({k: v.detach().cpu().numpy() for k, v in items if k in names and isinstance(v, torch.Tensor)})
        self._iter = iter(feeds)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._iter, None)


def apply_static(handle: ModelHandle, cfg: StaticQuantConfig, data: Any = None) -> TransformResult:
    method = "quantize:int8-static"
    batches = calibration_batches(data, cfg.batches, method)

    def quantize(src: Path, dst: Path, exclude: list[str]) -> None:
        quantize_static_file(src, dst, batches, exclude, per_channel=cfg.per_channel, observer=cfg.observer,
                             percentile=cfg.percentile)

    result = _quantized(handle, cfg, quantize)
    result.notes = [
        f"exported with torch.onnx ({cfg.exporter}); weights and activations int8, activation ranges "
        f"calibrated on {len(batches)} batches ({cfg.observer}) by onnxruntime.quantization",
        "runs in an onnxruntime InferenceSession (save writes an .onnx file)",
    ]
    return result
