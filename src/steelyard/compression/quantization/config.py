"""Configs of the quantization methods (frozen dataclasses, no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steelyard.compression.options import check_choice, check_positive_int, option
from steelyard.errors import ConfigError

BACKENDS = ("torch", "onnxruntime")
ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")
EXPORTERS = ("torchscript", "dynamo")


def _check_backend(method: str, backend: str, engine: str, exporter: str, threads: int) -> None:
    check_choice(method, "backend", backend, BACKENDS)
    check_choice(method, "engine", engine, ENGINES)
    check_choice(method, "exporter", exporter, EXPORTERS)
    check_positive_int(method, "threads", threads, minimum=0)


@dataclass(frozen=True)
class DynamicQuantConfig:
    """int8 weights, activations quantized at run time from their own range (Linear layers)."""

    backend: Literal["torch", "onnxruntime"] = option("torch", "torch (x86/fbgemm kernels) or onnxruntime")
    per_channel: bool = option(True, "one weight scale per output channel (else one per tensor)")
    engine: Literal["x86", "fbgemm", "onednn", "qnnpack"] = option("x86", "torch quantized engine")
    include_head: bool = option(True, "also quantize the output head")
    embeddings: bool = option(True, "also store embedding tables as int8 rows (weight-only)")
    exporter: Literal["torchscript", "dynamo"] = option("torchscript", "torch.onnx exporter (onnxruntime backend)")
    threads: int = option(0, "onnxruntime intra-op threads (0: torch's thread count)")

    def __post_init__(self) -> None:
        _check_backend("quantize:int8-dynamic", self.backend, self.engine, self.exporter, self.threads)


@dataclass(frozen=True)
class StaticQuantConfig:
    """int8 weights and activations, activation ranges calibrated on sample batches."""

    backend: Literal["torch", "onnxruntime"] = option("torch", "torch (x86/fbgemm kernels) or onnxruntime")
    observer: Literal["minmax", "percentile"] = option("minmax", "how calibration picks activation ranges")
    percentile: float = option(99.99, "percentile kept by the percentile observer")
    per_channel: bool = option(True, "one weight scale per output channel")
    batches: int = option(16, "at most this many calibration batches")
    engine: Literal["x86", "fbgemm", "onednn", "qnnpack"] = option("x86", "torch quantized engine")
    include_head: bool = option(True, "also quantize the output head")
    exporter: Literal["torchscript", "dynamo"] = option("torchscript", "torch.onnx exporter (onnxruntime backend)")
    threads: int = option(0, "onnxruntime intra-op threads (0: torch's thread count)")

    def __post_init__(self) -> None:
        method = "quantize:int8-static"
        _check_backend(method, self.backend, self.engine, self.exporter, self.threads)
        check_choice(method, "observer", self.observer, ("minmax", "percentile"))
        if not 50 < self.percentile <= 100:
            raise ConfigError(f"{method}: percentile must be in (50, 100], got {self.percentile}")
        check_positive_int(method, "batches", self.batches)


@dataclass(frozen=True)
class CastConfig:
    """Cast weights (and float inputs) to float16 or bfloat16."""

    dtype: Literal["float16", "bfloat16"] = option("float16", "target floating-point type")

    def __post_init__(self) -> None:
        check_choice("quantize:cast", "dtype", self.dtype, ("float16", "bfloat16"))


#: Group sizes torch's int4 CPU kernel accepts (``aten._weight_int4pack_mm_for_cpu``).
INT4_GROUP_SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class WeightOnlyConfig:
    """Store Linear (and GPT-2 Conv1D) weights as int8 / int4 codes run by torch's low-bit kernels."""

    bits: Literal[8, 4] = option(8, "bits per weight")
    group_size: int = option(
        0, "weights per scale along the input dim: 32/64/128/256 for int4; int8 has one scale per row (0)"
    )
    symmetric: bool = option(True, "symmetric codes (no zero point); int4 may be asymmetric (one zero per group)")
    include_head: bool = option(True, "also quantize the output head (the largest matrix a decode step reads)")
    embeddings: bool = option(True, "also store embedding tables as int8 rows (lookups dequantize only the rows read)")
    compute_dtype: Literal["bfloat16", "float32", "float16"] = option(
        "bfloat16", "dtype the kernel multiplies in (bfloat16: torch's fast CPU path; float32 is 10-30x slower on AVX2)"
    )

    @property
    def label(self) -> str:
        return f"quantize:int{self.bits}-weight-only"

    def __post_init__(self) -> None:
        method = self.label
        check_choice(method, "compute_dtype", self.compute_dtype, ("bfloat16", "float32", "float16"))
        check_choice(method, "bits", self.bits, (8, 4))
        check_positive_int(method, "group_size", self.group_size, minimum=0)
        if self.bits == 8 and (self.group_size or not self.symmetric):
            raise ConfigError(f"{method}: the int8 kernel (aten._weight_int8pack_mm) takes symmetric weights with "
                              f"one scale per output row: use group_size=0, symmetric=true")
        if self.bits == 4 and self.group_size not in INT4_GROUP_SIZES:
            raise ConfigError(f"{method}: group_size must be one of {', '.join(map(str, INT4_GROUP_SIZES))} "
                              f"(the int4 kernel's groups), got {self.group_size}")


@dataclass(frozen=True)
class AWQConfig(WeightOnlyConfig):
    """AWQ: per-input-channel scales searched on calibration activations (torchao's AWQ), then int8 / int4 codes."""

    batches: int = option(8, "at most this many calibration batches")
    grid: int = option(20, "scale candidates s = mean|X|^r searched, r = 0, 1/grid, ..., (grid-1)/grid")

    @property
    def label(self) -> str:
        return f"quantize:int{self.bits}-awq"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.label, "batches", self.batches)
        check_positive_int(self.label, "grid", self.grid)


@dataclass(frozen=True)
class GPTQConfig(WeightOnlyConfig):
    """GPTQ: codes chosen column by column against the calibration inputs' Hessian (llm-compressor's GPTQ)."""

    batches: int = option(8, "at most this many calibration batches")
    damp: float = option(0.01, "dampening added to the Hessian diagonal, as a fraction of its mean")
    block: int = option(128, "columns quantized per lazy batch update")

    @property
    def label(self) -> str:
        return f"quantize:int{self.bits}-gptq"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.label, "batches", self.batches)
        check_positive_int(self.label, "block", self.block)
        if not 0 < self.damp < 1:
            raise ConfigError(f"{self.label}: damp must be in (0, 1), got {self.damp}")


@dataclass(frozen=True)
class SmoothQuantConfig:
    """W8A8: SmoothQuant migrates activation outliers into the weights, then int8 weights and activations."""

    alpha: float = option(0.5, "migration strength: s = max|X|^alpha / max|W|^(1-alpha) per input channel")
    batches: int = option(8, "at most this many calibration batches")
    include_head: bool = option(False, "also quantize the output head")
    engine: Literal["x86", "fbgemm", "onednn", "qnnpack"] = option("x86", "torch quantized engine")

    def __post_init__(self) -> None:
        method = "quantize:w8a8"
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"{method}: alpha must be in [0, 1], got {self.alpha}")
        check_positive_int(method, "batches", self.batches)
        check_choice(method, "engine", self.engine, ENGINES)
