"""Hugging Face models from a config: on the meta device (shapes only) or with their weights.

Shared by the hub, folder, config-file and catalog loaders (:mod:`steelyard.models.sources`), and by
anything that needs the same architecture again without memory (:func:`build_on_meta`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steelyard.errors import CorruptWeightsError, ModelSourceError, TooLargeError, UnsupportedConfigError
from steelyard.models.handle import ModelHandle
from steelyard.models.tasks import auto_class, generative_task, infer_task, make_inputs

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")
#: Share of available RAM that loading weights may take before we refuse.
RAM_HEADROOM = 0.9
_CORRUPTION_HINTS = ("deserializ", "header", "unpickl", "invalid load key", "zip archive", "truncated", "eof")


def resolve_task(config: Any, cfg: LoadConfig, default_task: str | None = None) -> str:
    if cfg.task is None and cfg.generate and getattr(config, "is_encoder_decoder", False):
        return generative_task(config)
    return cfg.task or default_task or infer_task(config)


def _apply_labels(config: Any, cfg: LoadConfig) -> None:
    if cfg.num_labels is not None:
        config.num_labels = cfg.num_labels


def from_config(
    config: Any,
    name: str,
    kind: str,
    cfg: LoadConfig,
    *,
    default_task: str | None = None,
    path: Path | None = None,
) -> ModelHandle:
    """Build the architecture on the meta device: shapes only, no memory, no download."""
    task = resolve_task(config, cfg, default_task)
    _apply_labels(config, cfg)
    dtype = cfg.torch_dtype(config)
    published = getattr(config, "dtype", None)
    module = build_on_meta(config, task, dtype)
    config.dtype = published  # building sets the build dtype; the report states the published one beside it
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
    """The architecture on the meta device, ready for a counted forward with masks (see ``meta_attention``).

    A config transformers cannot build (a bad value, a family that needs a package that is not
    installed, such as timm) is a one-line :class:`UnsupportedConfigError`, not a traceback.
    """
    import copy

    import torch

    from steelyard.families.inputs import meta_attention

    cls = auto_class(task)
    model_type = getattr(config, "model_type", "?")
    try:
        with torch.device("meta"):
            # a copy: meta_attention below switches the attention implementation on the model's config, which
            # must not leak into the real model sharing it (a spawned worker does not know that implementation)
            module = cls.from_config(copy.deepcopy(config), dtype=dtype)
    except ImportError as exc:
        raise UnsupportedConfigError(
            f"the '{model_type}' config needs a package that is not installed: {_first_line(exc)}"
        ) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnsupportedConfigError(
            f"cannot build a {task} model from a '{model_type}' config: {_first_line(exc)}"
        ) from exc
    meta_attention(module)
    return module.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_pretrained(source: str, config: Any, kind: str, cfg: LoadConfig, path: Path | None) -> ModelHandle:
    """The model with its weights, after checking they fit in the RAM that is free."""
    import psutil
    import torch

    task = resolve_task(config, cfg)
    _apply_labels(config, cfg)
    dtype = cfg.torch_dtype(config)
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
        from steelyard.models.loading import hub_cause

        cause = hub_cause(source, exc) if path is None else None  # the weights of a hub id: offline, gated...
        if cause is not None:
            raise cause from exc
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


def _looks_corrupt(exc: BaseException) -> bool:
    """A damaged file, as opposed to weights that do not match the config (a different error)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return "safetensor" in text or any(hint in text for hint in _CORRUPTION_HINTS)


def weight_files(path: Path | None) -> list[Path]:
    if path is None or not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
