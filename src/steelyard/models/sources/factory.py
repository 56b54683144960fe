"""``package.module:function`` factories: any ``torch.nn.Module``, with its example inputs."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steelyard.errors import InputShapeError, ModelSourceError
from steelyard.models.handle import ModelHandle

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class FactoryLoader:
    """A factory returns a module, or (module, inputs), or ``{'model': ..., 'inputs': ...}``."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        return bool(_FACTORY.match(source)) and not Path(source).expanduser().exists()

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        import torch

        from steelyard.models.loading import torch_dtype

        module_name, func_name = source.split(":")
        try:
            factory = getattr(_import_from_cwd(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise ModelSourceError(f"cannot import factory '{source}': {exc}") from exc
        try:
            made = factory()
        except Exception as exc:
            raise ModelSourceError(f"factory '{source}' raised {type(exc).__name__}: {exc}") from exc
        module, inputs = _split(made)
        if not isinstance(module, torch.nn.Module):
            raise ModelSourceError(
                f"factory '{source}' returned {type(module).__name__}, not a torch.nn.Module "
                "(return a module, (module, inputs) or {'model': ..., 'inputs': ...})"
            )
        if inputs is None:
            inputs = getattr(module, "example_inputs", None)
        if inputs is None and not cfg.input_shapes:
            inputs = _inputs_from_config(module, cfg)
        if inputs is None and cfg.input_shapes:
            gen = torch.Generator().manual_seed(0)
            in_dtype = torch_dtype(cfg.input_dtype)
            inputs = tuple(
                torch.randn(s, generator=gen).to(in_dtype)
                if in_dtype.is_floating_point
                else torch.randint(0, 2, s, generator=gen).to(in_dtype)
                for s in cfg.input_shapes
            )
        if inputs is None:
            raise InputShapeError(
                f"factory '{source}' gives no example input: pass --input-shape (e.g. 1,3,224,224), return "
                "(module, inputs), or set module.example_inputs"
            )
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs,)
        dtype = torch_dtype(cfg.dtype or "float32")
        module = module.to(device=cfg.device, dtype=dtype).eval()
        return ModelHandle(
            name=source,
            source_kind="factory",
            task=cfg.task or "feature-extraction",
            module=module,
            inputs=_move_inputs(inputs, cfg.device, dtype),
            config=getattr(module, "config", None),
            dtype=dtype,
        )


def _inputs_from_config(module: Any, cfg: LoadConfig) -> Any:
    """A transformers model says what it reads in its config: build those inputs (None without one)."""
    from steelyard.models.tasks import infer_task, make_inputs

    config = getattr(module, "config", None)
    if config is None or not getattr(config, "model_type", None):
        return None
    return make_inputs(config, cfg.task or infer_task(config), cfg.inputs, "cpu")


def _split(made: Any) -> tuple[Any, Any]:
    """(module, inputs or None) from what a factory returned."""
    if isinstance(made, dict):
        return made.get("model"), made.get("inputs")
    if isinstance(made, tuple) and len(made) == 2:
        return made
    return made, None


def _import_from_cwd(module_name: str) -> Any:
    """Import like ``python -m`` would: the working directory first, only for this import."""
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _move_inputs(inputs: Any, device: str, dtype: Any) -> Any:
    def move(t: Any) -> Any:
        if not hasattr(t, "to"):
            return t
        return t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)

    if isinstance(inputs, dict):
        return {k: move(v) for k, v in inputs.items()}
    return tuple(move(v) for v in inputs)


LOADER = FactoryLoader()
