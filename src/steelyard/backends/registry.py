"""The backend registry: name → "module:Class", imported only when a backend is asked for."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

from steelyard.errors import ConfigError

if TYPE_CHECKING:
    from steelyard.backends.base import Backend

_B = "steelyard.backends"

BACKENDS: dict[str, str] = {
    "torch": f"{_B}.torch_eager:TorchBackend",
    "torch-compile": f"{_B}.torch_compiled:TorchCompileBackend",
    "onnxruntime": f"{_B}.onnx_runtime:OnnxRuntimeBackend",
    "openvino": f"{_B}.openvino_runtime:OpenVINOBackend",
}


def backend_names() -> list[str]:
    return list(BACKENDS)


@cache
def get_backend(name: str) -> Backend:
    """The backend called ``name`` (installed or not: ask ``available()``); unknown name → ConfigError."""
    spec = BACKENDS.get(name)
    if spec is None:
        raise ConfigError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}")
    module, attr = spec.split(":")
    return getattr(import_module(module), attr)()


def require_backend(name: str) -> Backend:
    """The backend called ``name``, or a one-line error naming what to install (exit 2)."""
    from steelyard.compression.base import BackendUnavailableError

    backend = get_backend(name)
    ok = backend.available()
    if not ok:
        raise BackendUnavailableError(f"backend {name} is not available: {ok.reason}")
    return backend
