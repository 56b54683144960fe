"""``torch``: PyTorch eager, fp32; bf16 autocast where the CPU has native bf16; torch.ao int8 dynamic."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steelyard.backends.base import Availability, Calibration, Inputs, check_precision, mark
from steelyard.backends.cpu import native_bf16
from steelyard.errors import ConfigError


class TorchModule(nn.Module):
    """The module itself, run under bf16 autocast for ``bf16`` (weights stay fp32)."""

    def __init__(self, module: nn.Module, precision: str = "fp32") -> None:
        super().__init__()
        self.model = module.eval()
        self.bf16 = precision == "bf16"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = self.model(*args, **kwargs)
            logits = getattr(out, "logits", None)
            if isinstance(logits, torch.Tensor):
                out.logits = logits.float()
            return out
        return self.model(*args, **kwargs)


def bf16_availability() -> Availability:
    if native_bf16():
        return Availability(True)
    return Availability(False, "this CPU has no native bf16 (no avx512_bf16 / amx_bf16 in /proc/cpuinfo)")


def int8_dynamic(module: nn.Module) -> nn.Module:
    """A copy with int8 dynamic Linear layers on torch.ao's x86 kernels (the compression method's defaults)."""
    from steelyard.compression.base import linear_layers
    from steelyard.compression.quantization.config import DynamicQuantConfig
    from steelyard.compression.quantization.dynamic import quantize_linears

    cfg = DynamicQuantConfig()
    model = copy.deepcopy(module).eval()
    names = [n for n, _ in linear_layers(model, cfg.include_head)]
    return quantize_linears(model, names, cfg.per_channel, cfg.engine)


def save_pretrained(model: nn.Module, folder: Path) -> None:
    inner = getattr(model, "model", model)
    inner = getattr(inner, "_orig_mod", inner)  # a torch.compile wrapper
    if not hasattr(inner, "save_pretrained"):
        raise ConfigError("a torch-backend artifact is a transformers folder; this model has no save_pretrained")
    from steelyard.models.quiet import library_bars

    with library_bars():
        inner.save_pretrained(folder)


def load_pretrained(folder: Path) -> nn.Module:
    from transformers import AutoConfig

    from steelyard.models.tasks import auto_class, infer_task

    config = AutoConfig.from_pretrained(str(folder))
    task = json.loads((folder / "steelyard_compression.json").read_text()).get("task") or infer_task(config)
    return auto_class(task).from_pretrained(str(folder)).eval()


class TorchBackend:
    name = "torch"
    extra = "steelyard (torch is a core dependency)"
    precisions = ("fp32", "bf16", "int8-dynamic")

    def available(self) -> Availability:
        return Availability(True)

    def supports(self, precision: str) -> Availability:
        return bf16_availability() if precision == "bf16" else Availability(True)

    def compile(self, module: nn.Module, example_inputs: Inputs, precision: str = "fp32",
                calibration: Calibration | None = None, threads: int | None = None) -> nn.Module:
        check_precision(self, precision)
        if precision == "int8-dynamic":
            return mark(TorchModule(int8_dynamic(module)), self.name, precision)
        return mark(TorchModule(module, precision), self.name, precision)

    def save(self, model: nn.Module, folder: Path) -> dict[str, Any]:
        if model.precision == "int8-dynamic":
            raise ConfigError("save a torch int8-dynamic model with `steelyard compress` "
                              "(quantize:int8-dynamic); the runtime artifact holds fp32 weights")
        save_pretrained(model, folder)
        return {}

    def load(self, folder: Path, record: dict[str, Any], threads: int | None = None) -> nn.Module:
        return self.compile(load_pretrained(folder), {}, record.get("precision", "fp32"))
