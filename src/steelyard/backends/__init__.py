"""Runtimes a model can be served with, behind one :class:`~steelyard.backends.base.Backend` interface.

``torch`` (eager), ``torch-compile`` (inductor), ``onnxruntime`` and ``openvino``: each exports or
compiles a PyTorch module into a callable with the module's forward signature, checks its outputs
against torch, and saves / loads one artifact folder. Which runtime is fastest on a machine is
measured (:mod:`.select`), never assumed. Nothing here imports a runtime until it is used.
"""

from __future__ import annotations

from steelyard.backends.registry import BACKENDS, backend_names, get_backend, require_backend

__all__ = ["BACKENDS", "backend_names", "get_backend", "require_backend"]
