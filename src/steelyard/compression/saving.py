"""Save a compressed model atomically, and load it back.

A saved folder is a ``save_pretrained`` folder (``config.json`` + ``model.safetensors``) plus
``steelyard_compression.json``, the manifest: which methods ran, and the structure that the
config alone cannot describe —

* ``modules``: layers replaced by another kind (low-rank pairs, int8 / weight-only Linear), with
  their sizes;
* ``tensors``: shape and dtype of every saved tensor (pruned widths, float16 weights);
* ``attrs``: structural attributes of every module (``num_attention_heads``, ``in_features``...).

:func:`load_compressed` builds the architecture from ``config.json``, replays that structure
(replace modules, resize tensors, set attributes) and then loads the weights strictly, so the
result computes exactly what was saved. Models whose structure fits their config (unstructured
and FFN/layer pruning, fp16/bf16) load with plain ``transformers`` ``from_pretrained`` as well.
int8 weights are stored as plain tensors (codes, scales, zero points), never pickled.

The folder is written to a temporary sibling and renamed into place, so a crash leaves either the
old folder or the new one, never half of one; the original model's files are never written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from steelyard.compression.base import set_module
from steelyard.errors import CompressionError

if TYPE_CHECKING:
    from steelyard.compression.api import CompressedModel
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig

MANIFEST = "steelyard_compression.json"
ONNX_FILE = "model.onnx"
FORMAT_VERSION = 1
STRUCT_ATTRS = (
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "groups",
    "num_features",
    "normalized_shape",
    "num_attention_heads",
    "all_head_size",
    "attention_head_size",
    "num_heads",
    "head_dim",
)
MODULE_KINDS = {
    "low-rank-linear": "steelyard.compression.low_rank.svd:FactorizedLinear",
    "low-rank-conv2d": "steelyard.compression.low_rank.svd:FactorizedConv2d",
    "weight-only-linear": "steelyard.compression.quantization.modules:WeightOnlyLinear",
    "int8-static-linear": "steelyard.compression.quantization.modules:StaticQuantLinear",
    "int8-embedding": "steelyard.compression.quantization.modules:QuantizedEmbedding",
}
DYNAMIC_KIND = "int8-dynamic-linear"
_DYNAMIC_KEYS = ("weight_int8", "weight_scale", "weight_zero_point")


def _dynamic_linear_type() -> type:
    import torch.ao.nn.quantized.dynamic as nnqd

    return nnqd.Linear


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# -- structure -------------------------------------------------------------------------------
def module_records(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Replaced layers by path: what the loader must build instead of the config's own layer."""
    dynamic = _dynamic_linear_type()
    records: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        if isinstance(m, dynamic):
            _weight, bias = m._weight_bias()
            records[name] = {
                "kind": DYNAMIC_KIND,
                "in_features": m.in_features,
                "out_features": m.out_features,
                "bias": bias is not None,
            }
        elif callable(getattr(m, "steelyard_record", None)) and name:
            records[name] = m.steelyard_record()
    return records


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with int8 dynamic Linear layers as plain tensors (codes, scales, zero points)."""
    from steelyard.compression.quantization.modules import plain_weight

    state = model.state_dict()
    packed = ("scale", "zero_point", "_packed_params.dtype", "_packed_params._packed_params")
    for name, m in model.named_modules():
        if isinstance(m, _dynamic_linear_type()):
            prefix = f"{name}." if name else ""
            for key in packed:
                state.pop(prefix + key, None)
            for key, value in plain_weight(*m._weight_bias()).items():
                state[prefix + key] = value
    return {k: v.detach().cpu().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}


def structural_attrs(model: nn.Module) -> dict[str, dict[str, Any]]:
    attrs: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        found = {}
        for attr in STRUCT_ATTRS:
            value = m.__dict__.get(attr)
            if isinstance(value, int) and not isinstance(value, bool):
                found[attr] = value
            elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
                found[attr] = list(value)
        if found:
            attrs[name] = found
    return attrs


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, torch.dtype):
        return _dtype_name(value)
    return str(value)


# -- save ------------------------------------------------------------------------------------
def _manifest(cm: CompressedModel) -> dict[str, Any]:
    import steelyard

    handle = cm.handle
    fidelity = None
    if cm.fidelity is not None:
        f = cm.fidelity
        fidelity = {
            "sqnr_db": f.sqnr_db if f.sqnr_db != float("inf") else "inf",
            "max_abs_error": f.max_abs_error,
            "cosine": f.cosine,
            "agreement": f.agreement,
            "output": f.output,
        }
    return {
        "format": "steelyard-compression",
        "version": FORMAT_VERSION,
        "steelyard": steelyard.__version__,
        "torch": torch.__version__,
        "backend": cm.backend,
        "task": handle.task,
        "source": {
            "name": handle.name,
            "kind": handle.source_kind,
            "path": str(cm.source_path) if cm.source_path else None,
        },
        "model_class": type(handle.module).__name__,
        "methods": list(cm.history),
        "changes": {
            "params_before": cm.params_before,
            "params_after": cm.params_after,
            "bytes_before": int(cm.bytes_before),
            "bytes_after": int(cm.bytes_after),
            "nonzero_after": cm.nonzero_after,
            "notes": list(cm.notes),
        },
        "fidelity": fidelity,
        "example_inputs": {k: list(v.shape) for k, v in _named_inputs(handle.inputs).items()},
    }


def _named_inputs(inputs: Any) -> dict[str, torch.Tensor]:
    items = inputs.items() if isinstance(inputs, dict) else ((f"input_{i}", v) for i, v in enumerate(inputs))
    return {k: v for k, v in items if isinstance(v, torch.Tensor)}


def _default_load_config(manifest: dict[str, Any], task: str | None) -> LoadConfig:
    """Example inputs shaped like the ones the model was compressed with."""
    from steelyard.models.loading import LoadConfig
    from steelyard.models.tasks import InputSpec

    shapes = manifest.get("example_inputs") or {}
    first = next(iter(shapes.values()), None)
    if not first:
        return LoadConfig(task=task)
    if len(first) == 4:  # images: batch, channels, height, width
        return LoadConfig(task=task, inputs=InputSpec(batch_size=first[0], image_size=first[2]))
    if len(first) == 2:  # token ids: batch, sequence
        return LoadConfig(task=task, inputs=InputSpec(batch_size=first[0], seq_len=first[1]))
    return LoadConfig(task=task, input_shapes=tuple(tuple(s) for s in shapes.values()))


def _write_torch(cm: CompressedModel, folder: Path, manifest: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    model = cm.handle.module
    state = plain_state_dict(model)
    manifest["modules"] = module_records(model)
    manifest["tensors"] = {k: {"shape": list(v.shape), "dtype": _dtype_name(v.dtype)} for k, v in state.items()}
    manifest["attrs"] = structural_attrs(model)
    if hasattr(model, "save_pretrained"):
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(folder, state_dict=state)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        return
    seen: dict[int, str] = {}
    unique = {}
    for key, value in state.items():  # safetensors refuses shared storage: keep the first name
        ptr = value.untyped_storage().data_ptr()
        if value.numel() and ptr in seen:
            manifest.setdefault("aliases", {})[key] = seen[ptr]
            continue
        seen[ptr] = key
        unique[key] = value.clone() if value.numel() else value
    save_file(unique, str(folder / "model.safetensors"), metadata={"format": "pt"})
    if cm.handle.config is not None and hasattr(cm.handle.config, "save_pretrained"):
        cm.handle.config.save_pretrained(folder)


def _write_onnx(cm: CompressedModel, folder: Path, manifest: dict[str, Any]) -> None:
    module = cm.handle.module
    (folder / ONNX_FILE).write_bytes(module.model_bytes)
    manifest["modules"] = {"": module.steelyard_record()}
    config = cm.handle.config
    if config is not None and hasattr(config, "save_pretrained"):
        config.save_pretrained(folder)


def _protected(cm: CompressedModel, target: Path) -> None:
    for source in (cm.source_path, cm.handle.path):
        if source is None:
            continue
        src = Path(source).resolve()
        if target == src or src in target.parents or target in src.parents:
            raise CompressionError(
                f"refusing to write {target}: it would overwrite or contain the original model "
                f"files in {src}; choose another output folder"
            )


def save_compressed(cm: CompressedModel, path: Path, *, overwrite: bool = False) -> Path:
    target = path.expanduser().resolve()
    _protected(cm, target)
    if target.suffix == ".onnx":
        if cm.backend != "onnxruntime":
            raise CompressionError(
                f"{target.name}: only an onnxruntime-backend model saves as an .onnx file; give a folder name"
            )
        if target.exists() and not overwrite:
            raise CompressionError(f"{target} exists; pass overwrite=True (CLI: --overwrite) to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(cm.handle.module.model_bytes)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
    if target.exists() and (target.is_file() or any(target.iterdir())) and not overwrite:
        raise CompressionError(
            f"{target} exists and is not empty; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        manifest = _manifest(cm)
        if cm.backend == "onnxruntime":
            _write_onnx(cm, tmp, manifest)
        else:
            _write_torch(cm, tmp, manifest)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# -- load ------------------------------------------------------------------------------------
def _resolve(spec: str) -> Any:
    from importlib import import_module

    module, attr = spec.split(":")
    return getattr(import_module(module), attr)


def _build_replacement(rec: dict[str, Any]) -> nn.Module:
    kind = rec.get("kind")
    if kind == DYNAMIC_KIND:
        import torch.ao.nn.quantized.dynamic as nnqd

        from steelyard.compression.quantization.modules import quiet_quantization

        with quiet_quantization():
            return nnqd.Linear(rec["in_features"], rec["out_features"], bias_=rec["bias"], dtype=torch.qint8)
    if kind not in MODULE_KINDS:
        raise CompressionError(f"unknown module kind '{kind}' in {MANIFEST}; is this steelyard too old?")
    return _resolve(MODULE_KINDS[kind]).from_record(rec)


def _resize(model: nn.Module, tensors: dict[str, dict[str, Any]]) -> None:
    """Give every parameter / buffer the saved shape and dtype (pruned widths, casts)."""
    for name, spec in tensors.items():
        owner_name, _, leaf = name.rpartition(".")
        try:
            owner = model.get_submodule(owner_name) if owner_name else model
        except AttributeError:
            continue
        shape, dtype = tuple(spec["shape"]), getattr(torch, spec["dtype"])
        if leaf in owner._parameters and owner._parameters[leaf] is not None:
            current = owner._parameters[leaf]
            if tuple(current.shape) != shape or current.dtype != dtype:
                owner._parameters[leaf] = nn.Parameter(
                    torch.empty(shape, dtype=dtype), requires_grad=current.requires_grad and dtype.is_floating_point
                )
        elif leaf in owner._buffers and owner._buffers[leaf] is not None:
            current = owner._buffers[leaf]
            if tuple(current.shape) != shape or current.dtype != dtype:
                owner._buffers[leaf] = torch.empty(shape, dtype=dtype)


def _set_attrs(model: nn.Module, attrs: dict[str, dict[str, Any]]) -> None:
    for name, values in attrs.items():
        try:
            module = model.get_submodule(name) if name else model
        except AttributeError:
            continue
        for attr, value in values.items():
            if attr in module.__dict__:
                module.__dict__[attr] = tuple(value) if isinstance(value, list) else value


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CompressionError(f"{folder} holds no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def _load_dynamic(model: nn.Module, state: dict[str, torch.Tensor], records: dict[str, dict[str, Any]]) -> None:
    from steelyard.compression.quantization.modules import quantized_weight, quiet_quantization

    for name, rec in records.items():
        if rec.get("kind") != DYNAMIC_KIND:
            continue
        prefix = f"{name}." if name else ""
        try:
            codes, scale, zp = (state.pop(prefix + k) for k in _DYNAMIC_KEYS)
        except KeyError as exc:
            raise CompressionError(f"saved weights lack {exc.args[0]} for the int8 layer {name}") from None
        bias = state.pop(prefix + "bias", None)
        module = model.get_submodule(name)
        with quiet_quantization():
            module.set_weight_bias(quantized_weight(codes, scale, zp), bias)
        for key, value in module.state_dict().items():  # its own keys, so load_state_dict leaves it as set
            state[prefix + key] = value


def _tied_names(model: nn.Module) -> set[str]:
    """Names of parameters that share their tensor with an earlier name (tied weights)."""
    seen: set[int] = set()
    tied: set[str] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            tied.add(name)
        seen.add(id(p))
    return tied


def _engine(manifest: dict[str, Any]) -> str:
    for step in reversed(manifest.get("methods", [])):
        engine = step.get("config", {}).get("engine")
        if engine:
            return engine
    return str(torch.backends.quantized.engine)


def rebuild(model: nn.Module, manifest: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """Replay the saved structure on a freshly built ``model`` and load ``state`` into it."""
    from steelyard.compression.quantization.engine import quantized_engine

    records = manifest.get("modules", {})
    for name in sorted(records, key=lambda n: n.count(".")):  # outer layers before their children
        set_module(model, name, _build_replacement(records[name]))
    _resize(model, manifest.get("tensors", {}))
    _set_attrs(model, manifest.get("attrs", {}))
    for alias, original in manifest.get("aliases", {}).items():
        if original in state:
            state[alias] = state[original]
    has_int8 = any(r.get("kind") in (DYNAMIC_KIND, "int8-static-linear") for r in records.values())
    with quantized_engine(_engine(manifest)) if has_int8 else contextlib.nullcontext():
        _load_dynamic(model, state, records)
        ordered: Any = OrderedDict(state)
        # torch's quantized modules read their state-dict version from the metadata
        ordered._metadata = getattr(model.state_dict(), "_metadata", None)
        result = model.load_state_dict(ordered, strict=False)
    missing = [k for k in result.missing_keys if k not in _tied_names(model)]
    if missing or result.unexpected_keys:
        raise CompressionError(
            "the saved weights do not fit the rebuilt model: "
            f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
            f"unexpected {result.unexpected_keys[:3]}{'…' if len(result.unexpected_keys) > 3 else ''}"
        )
    return model.eval()


def _onnx_inputs(module: Any, cfg: LoadConfig) -> dict[str, torch.Tensor]:
    """Example inputs from the session's declared inputs (symbolic dims → batch / sequence)."""
    inputs = {}
    for i, meta in enumerate(module.session.get_inputs()):
        shape = [
            d if isinstance(d, int) and d > 0 else (cfg.inputs.batch_size if j == 0 else cfg.inputs.seq_len)
            for j, d in enumerate(meta.shape)
        ]
        if "int" in meta.type:
            inputs[meta.name] = torch.ones(shape, dtype=torch.int64)
        else:
            inputs[meta.name] = torch.randn(shape, generator=torch.Generator().manual_seed(i))
    return inputs


def _fit_to_session(inputs: dict[str, Any], module: Any, cfg: LoadConfig) -> dict[str, Any]:
    """Replace inputs whose shape clashes with the fixed dims the ONNX model was exported with."""
    declared = _onnx_inputs(module, cfg)
    fitted = {}
    for name, example in declared.items():
        given = inputs.get(name)
        fits = (
            given is not None
            and given.dim() == example.dim()
            and all(
                not isinstance(d, int) or d <= 0 or d == g
                for d, g in zip(
                    next(i.shape for i in module.session.get_inputs() if i.name == name), given.shape, strict=False
                )
            )
        )
        fitted[name] = given if fits else example
    return fitted


def load_compressed(path: str | Path, cfg: LoadConfig | None = None) -> ModelHandle:
    """Load what :meth:`CompressedModel.save` wrote (or any model folder) as a :class:`ModelHandle`."""
    from steelyard.compression.quantization.cast import cast_inputs
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig, load_model, weight_files
    from steelyard.models.tasks import auto_class, make_inputs

    folder = Path(path).expanduser()
    if folder.is_file() and folder.suffix == ".onnx":
        cfg = cfg or LoadConfig()
        from steelyard.compression.quantization.onnx_backend import OnnxRuntimeModule

        module = OnnxRuntimeModule(folder.read_bytes())
        return ModelHandle(
            name=str(folder),
            source_kind="local",
            task=cfg.task or "feature-extraction",
            module=module,
            inputs=_onnx_inputs(module, cfg),
            path=folder,
            weights_files=[folder],
        )
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return load_model(str(folder), cfg or LoadConfig())
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompressionError(f"cannot read {manifest_path}: {exc}") from exc
    if manifest.get("format") != "steelyard-compression" or manifest.get("version", 0) > FORMAT_VERSION:
        raise CompressionError(f"{manifest_path} is not a steelyard compression manifest this version can read")
    cfg = cfg or _default_load_config(manifest, manifest.get("task"))
    task = cfg.task or manifest.get("task") or "feature-extraction"
    config = None
    if (folder / "config.json").is_file():
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(folder))
    if manifest.get("backend") == "onnxruntime":
        from steelyard.compression.quantization.onnx_backend import OnnxRuntimeModule

        record = manifest.get("modules", {}).get("", {})
        module = OnnxRuntimeModule((folder / ONNX_FILE).read_bytes(), output_names=record.get("outputs"))
        inputs = (
            _fit_to_session(make_inputs(config, task, cfg.inputs, "cpu"), module, cfg)
            if config is not None
            else _onnx_inputs(module, cfg)
        )
        return ModelHandle(
            name=str(folder),
            source_kind="local",
            task=task,
            module=module,
            inputs=inputs,
            config=config,
            path=folder,
            weights_files=[folder / ONNX_FILE],
        )
    source = manifest.get("source", {})
    if source.get("kind") == "factory":
        base = load_model(source["name"], LoadConfig(task=cfg.task, inputs=cfg.inputs, input_shapes=cfg.input_shapes))
        model, inputs, config = base.module, base.inputs, config or base.config
    elif config is not None:
        model = auto_class(task).from_config(config)
        inputs = make_inputs(config, task, cfg.inputs, "cpu")
    else:
        raise CompressionError(f"{folder} has neither a config.json nor a factory source to rebuild the model from")
    model = rebuild(model, manifest, _read_weights(folder))
    model.__dict__["_steelyard_history"] = tuple(manifest.get("methods", []))
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32
    if dtype != torch.float32:
        inputs = cast_inputs(inputs, dtype)
    factory = source.get("kind") == "factory"
    return ModelHandle(
        name=source["name"] if factory else str(folder),
        source_kind="factory" if factory else "local",
        task=task,
        module=model,
        inputs=inputs,
        config=getattr(model, "config", config),
        path=folder,
        weights_files=weight_files(folder),
        dtype=dtype,
    )
