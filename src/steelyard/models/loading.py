"""Resolve a model string to a ModelHandle: hub id, local folder, factory, config or catalog.

Safety: weights load through transformers (safetensors, or ``torch.load(weights_only=True)``
for legacy ``.bin``), never an unrestricted unpickle; ``trust_remote_code`` is off unless the
user passes it.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steelyard.errors import (
    ConfigError,
    CorruptWeightsError,
    DtypeUnsupportedError,
    InputShapeError,
    ModelSourceError,
    TooLargeError,
    UnsupportedConfigError,
)
from steelyard.models.catalog import closest_names, find_entry
from steelyard.models.handle import ModelHandle
from steelyard.models.tasks import InputSpec, auto_class, check_task, infer_task, make_inputs

DTYPES = ("float32", "float16", "bfloat16")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: Share of available RAM that loading weights may take before we refuse.
RAM_HEADROOM = 0.9


@dataclass(frozen=True)
class LoadConfig:
    """How to load a model; the CLI builds one of these from its flags."""

    task: str | None = None
    config_only: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    inputs: InputSpec = field(default_factory=InputSpec)
    #: For factories that give no example input: one shape per positional input.
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_dtype: str = "float32"
    trust_remote_code: bool = False
    num_labels: int | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype '{self.dtype}'; choose one of: {', '.join(DTYPES)}")
        if self.task is not None:
            check_task(self.task)
        check_device(self.device, self.dtype)


def check_device(device: str, dtype: str) -> None:
    """Refuse a device this machine lacks, or a dtype that device cannot compute in."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device '{device}'; use cpu or cuda[:N]") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DtypeUnsupportedError(f"device '{device}' requested but CUDA is not available on this machine")
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{device}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
        if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise DtypeUnsupportedError(f"bfloat16 is not supported on {torch.cuda.get_device_name(index)}; "
                                        "use float16")
    elif dev.type not in ("cpu", "meta"):
        raise ConfigError(f"unsupported device '{device}'; use cpu or cuda[:N]")


def torch_dtype(name: str) -> Any:
    import torch

    return {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "int64": torch.int64,
        "int32": torch.int32,
    }[name]


def load_model(source: str, cfg: LoadConfig | None = None) -> ModelHandle:
    """Build a handle for ``source``; see the module docstring for what ``source`` may be."""
    cfg = cfg or LoadConfig()
    path = Path(source).expanduser()
    if _FACTORY.match(source) and not path.exists():
        return _from_factory(source, cfg)
    if path.exists():
        if _is_compressed(path) and not cfg.config_only:
            from steelyard.compression.saving import load_compressed

            return load_compressed(path, cfg)
        if path.is_file() and path.suffix == ".json":
            return _from_config(_read_config_file(path), source, "config", cfg, path=path.parent)
        if path.is_dir() and (path / "config.json").is_file():
            return _from_folder(path, cfg)
        raise ModelSourceError(
            f"'{source}' is neither a model folder with a config.json nor a config .json file"
        )
    entry = find_entry(source)
    if entry is not None and (cfg.config_only or entry.name == source.lower()):
        if not cfg.config_only:
            raise ModelSourceError(
                f"'{source}' is a catalog architecture (config only): add --config-only, "
                f"or pass the hub id '{entry.hub_id}' to load its weights"
            )
        config = entry.build_config()
        return _from_config(config, entry.name, "catalog", cfg, default_task=entry.task)
    return _from_hub(source, cfg)


# -- sources ---------------------------------------------------------------------------------
def _is_compressed(path: Path) -> bool:
    """A folder or ``.onnx`` file written by ``steelyard compress``: pruned widths and int8 layers
    that ``from_pretrained`` cannot rebuild, so it loads through :func:`load_compressed`."""
    return (path.is_dir() and (path / "steelyard_compression.json").is_file()) or (
        path.is_file() and path.suffix == ".onnx")


def _read_config_file(path: Path) -> Any:
    from transformers import AutoConfig

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"cannot read config file {path}: {exc}") from exc
    model_type = data.pop("model_type", None) if isinstance(data, dict) else None
    if not model_type:
        raise UnsupportedConfigError(f"{path} has no 'model_type'; steelyard needs a Hugging Face config")
    try:
        return AutoConfig.for_model(model_type, **data)
    except (ValueError, KeyError) as exc:
        raise UnsupportedConfigError(f"unsupported model type '{model_type}' in {path}") from exc


def _from_hub(source: str, cfg: LoadConfig) -> ModelHandle:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
    except ValueError as exc:
        raise UnsupportedConfigError(f"'{source}': {str(exc).splitlines()[0]}") from exc
    except (OSError, Exception) as exc:  # transformers raises OSError, or hub errors when offline
        hints = closest_names(source)
        hint = f"; catalog architectures with a close name: {', '.join(hints)}" if hints else ""
        raise ModelSourceError(
            f"model '{source}' not found: not a local path, not a factory 'module:function', not in the "
            f"catalog, and the Hugging Face hub could not provide it{hint}"
        ) from exc
    if cfg.config_only:
        return _from_config(config, source, "hub", cfg)
    return _load_pretrained(source, config, "hub", cfg, path=None)


def _from_folder(path: Path, cfg: LoadConfig) -> ModelHandle:
    config = _read_folder_config(path, cfg)
    if cfg.config_only:
        handle = _from_config(config, str(path), "local", cfg, path=path)
        handle.weights_files = weight_files(path)
        return handle
    return _load_pretrained(str(path), config, "local", cfg, path=path)


def _read_folder_config(path: Path, cfg: LoadConfig) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=cfg.trust_remote_code)
    except ValueError as exc:
        raise UnsupportedConfigError(f"{path}: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise ModelSourceError(f"cannot read the config in {path}: {str(exc).splitlines()[0]}") from exc


def _resolve_task(config: Any, cfg: LoadConfig, default_task: str | None = None) -> str:
    return cfg.task or default_task or infer_task(config)


def _apply_labels(config: Any, cfg: LoadConfig) -> None:
    if cfg.num_labels is not None:
        config.num_labels = cfg.num_labels


def _from_config(
    config: Any,
    name: str,
    kind: str,
    cfg: LoadConfig,
    *,
    default_task: str | None = None,
    path: Path | None = None,
) -> ModelHandle:
    """Build the architecture on the meta device: shapes only, no memory, no download."""

    task = _resolve_task(config, cfg, default_task)
    _apply_labels(config, cfg)
    dtype = torch_dtype(cfg.dtype)
    module = build_on_meta(config, task, dtype)
    inputs = make_inputs(config, task, cfg.inputs, "meta")
    return ModelHandle(
        name=name,
        source_kind=kind,
        task=task,
        module=module,
        inputs=inputs,
        config=config,
        path=path,
        dtype=dtype,
    )


def build_on_meta(config: Any, task: str, dtype: Any) -> Any:
    import torch

    cls = auto_class(task)
    try:
        with torch.device("meta"):
            module = cls.from_config(config, dtype=dtype)
    except ValueError as exc:
        raise UnsupportedConfigError(
            f"cannot build a {task} model from a '{getattr(config, 'model_type', '?')}' config: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    return module.eval()


def _load_pretrained(source: str, config: Any, kind: str, cfg: LoadConfig, path: Path | None) -> ModelHandle:
    import psutil
    import torch

    task = _resolve_task(config, cfg)
    _apply_labels(config, cfg)
    dtype = torch_dtype(cfg.dtype)
    meta = build_on_meta(config, task, dtype)
    need = sum(p.numel() * p.element_size() for p in meta.parameters())
    available = psutil.virtual_memory().available
    if need > RAM_HEADROOM * available:
        raise TooLargeError(
            f"loading '{source}' needs about {need / 2**30:.1f} GiB for weights but only "
            f"{available / 2**30:.1f} GiB is free; weigh it with --config-only instead"
        )
    cls = auto_class(task)
    try:
        module = cls.from_pretrained(
            source, config=config, dtype=dtype, trust_remote_code=cfg.trust_remote_code
        )
    except Exception as exc:  # transformers, safetensors and the hub raise many types here
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if path is not None and weight_files(path) and _looks_corrupt(exc):
            raise CorruptWeightsError(f"cannot read the weights in {path}: {message}") from exc
        raise ModelSourceError(f"cannot load weights for '{source}': {message}") from exc
    module = module.to(cfg.device).eval()
    inputs = make_inputs(config, task, cfg.inputs, cfg.device)
    return ModelHandle(
        name=source,
        source_kind=kind,
        task=task,
        module=module,
        inputs=inputs,
        config=config,
        path=path,
        weights_files=weight_files(path) if path else [],
        dtype=dtype if dtype != torch.float32 else torch.float32,
    )


_CORRUPTION_HINTS = ("deserializ", "header", "unpickl", "invalid load key", "zip archive", "truncated", "eof")


def _looks_corrupt(exc: BaseException) -> bool:
    """A damaged file, as opposed to weights that do not match the config (a different error)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return "safetensor" in text or any(hint in text for hint in _CORRUPTION_HINTS)


def _from_factory(spec: str, cfg: LoadConfig) -> ModelHandle:
    """``package.module:function`` returning a module, or (module, inputs), or a dict of both."""
    import torch

    module_name, func_name = spec.split(":")
    try:
        factory = getattr(_import_from_cwd(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ModelSourceError(f"cannot import factory '{spec}': {exc}") from exc
    try:
        made = factory()
    except Exception as exc:
        raise ModelSourceError(f"factory '{spec}' raised {type(exc).__name__}: {exc}") from exc
    inputs: Any = None
    if isinstance(made, dict):
        module, inputs = made.get("model"), made.get("inputs")
    elif isinstance(made, tuple) and len(made) == 2:
        module, inputs = made
    else:
        module = made
    if not isinstance(module, torch.nn.Module):
        raise ModelSourceError(
            f"factory '{spec}' returned {type(module).__name__}, not a torch.nn.Module "
            "(return a module, (module, inputs) or {'model': ..., 'inputs': ...})"
        )
    if inputs is None:
        inputs = getattr(module, "example_inputs", None)
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
            f"factory '{spec}' gives no example input: pass --input-shape (e.g. 1,3,224,224), return "
            "(module, inputs), or set module.example_inputs"
        )
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    dtype = torch_dtype(cfg.dtype)
    module = module.to(device=cfg.device, dtype=dtype).eval()
    inputs = _move_inputs(inputs, cfg.device, dtype)
    task = cfg.task or "feature-extraction"
    return ModelHandle(
        name=spec,
        source_kind="factory",
        task=task,
        module=module,
        inputs=inputs,
        config=getattr(module, "config", None),
        dtype=dtype,
    )


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


def weight_files(path: Path | None) -> list[Path]:
    if path is None or not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
