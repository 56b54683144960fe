"""``torch-compile``: ``torch.compile`` with the inductor backend (generates C++ kernels: needs a compiler).

The first call compiles; :meth:`TorchCompileBackend.compile` makes it on the example inputs so
that timing starts on a compiled model. A new input shape recompiles (``dynamic=None``: torch
marks a dimension dynamic after it changes once).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steelyard.backends.base import Availability, Calibration, Inputs, check_precision, mark, run_module
from steelyard.backends.torch_eager import TorchModule, bf16_availability, load_pretrained, save_pretrained


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use ($CXX, else c++ / g++ / clang++ on PATH)."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class TorchCompileBackend:
    name = "torch-compile"
    extra = "a C++ compiler (apt-get install g++) for torch inductor"
    precisions = ("fp32", "bf16")

    def available(self) -> Availability:
        if cxx_compiler() is None:
            return Availability(False, "torch.compile (inductor) needs a C++ compiler and none is on PATH "
                                       "(set CXX or install g++)")
        return Availability(True)

    def supports(self, precision: str) -> Availability:
        return bf16_availability() if precision == "bf16" else Availability(True)

    def compile(self, module: nn.Module, example_inputs: Inputs, precision: str = "fp32",
                calibration: Calibration | None = None, threads: int | None = None) -> nn.Module:
        check_precision(self, precision)
        compiled = torch.compile(module.eval(), backend="inductor")
        model = mark(TorchModule(compiled, precision), self.name, precision)
        if example_inputs:
            run_module(model, example_inputs)  # compile now, not inside the timer's warm-up
        return model

    def save(self, model: nn.Module, folder: Path) -> dict[str, Any]:
        save_pretrained(model, folder)
        return {}

    def load(self, folder: Path, record: dict[str, Any], threads: int | None = None) -> nn.Module:
        return self.compile(load_pretrained(folder), {}, record.get("precision", "fp32"))
