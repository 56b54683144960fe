"""``load_compressed``: a saved folder, a bare ``.onnx`` file or any plain model folder → ModelHandle.

``load_model`` reaches it through the loaders in :mod:`.sources`. Folders without a manifest go to
:func:`steelyard.models.loading.load_model` unchanged; with one,
the model is rebuilt from its config (or its factory), its recorded structure replayed and its
weights loaded strictly (:mod:`.rebuild`). Models whose structure fits their config (unstructured,
FFN, uniform head and layer pruning, fp16 / bf16) also load with plain ``transformers``
``from_pretrained``; the others are guarded so that transformers refuses them (:mod:`.plain_hf`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from steelyard.compression.api import HISTORY_ATTR
from steelyard.compression.serialization.manifest import ONNX_FILE, default_load_config, read_manifest
from steelyard.compression.serialization.onnx_files import fit_to_session, session_inputs
from steelyard.compression.serialization.plain_hf import read_config
from steelyard.compression.serialization.rebuild import rebuild
from steelyard.errors import CompressionError, ModelSourceError

if TYPE_CHECKING:
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CompressionError(f"{folder} holds no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def _onnx_file(path: Path, cfg: LoadConfig) -> ModelHandle:
    from steelyard.compression.quantization.onnx_backend import OnnxRuntimeModule
    from steelyard.models.handle import ModelHandle

    module = OnnxRuntimeModule(path.read_bytes())
    return ModelHandle(
        name=str(path),
        source_kind="local",
        task=cfg.task or "feature-extraction",
        module=module,
        inputs=session_inputs(module, cfg),
        path=path,
        weights_files=[path],
    )


def _onnx_folder(folder: Path, manifest: dict[str, Any], cfg: LoadConfig, task: str, config: Any) -> ModelHandle:
    from steelyard.compression.quantization.onnx_backend import OnnxRuntimeModule
    from steelyard.models.handle import ModelHandle
    from steelyard.models.tasks import make_inputs

    record = manifest.get("modules", {}).get("", {})
    module = OnnxRuntimeModule((folder / ONNX_FILE).read_bytes(), output_names=record.get("outputs"))
    module.__dict__[HISTORY_ATTR] = tuple(manifest.get("methods", []))  # profile says what the methods did
    inputs = (
        fit_to_session(make_inputs(config, task, cfg.inputs, "cpu"), module, cfg)
        if config is not None
        else session_inputs(module, cfg)
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


def _torch_folder(folder: Path, manifest: dict[str, Any], cfg: LoadConfig, task: str, config: Any) -> ModelHandle:
    from steelyard.compression.quantization.cast import cast_inputs
    from steelyard.models.handle import ModelHandle
    from steelyard.models.hf import weight_files
    from steelyard.models.loading import LoadConfig, load_model
    from steelyard.models.tasks import auto_class, make_inputs

    source = manifest.get("source", {})
    factory = source.get("kind") == "factory"
    if factory:
        if not cfg.trust_remote_code:
            raise ModelSourceError(
                f"{folder} is rebuilt by the Python factory '{str(source.get('name'))[:200]}' its manifest names; "
                "loading it would import and run that code: pass --trust-remote-code "
                "(LoadConfig(trust_remote_code=True)) only if you trust where the folder came from")
        base = load_model(source["name"], LoadConfig(task=cfg.task, inputs=cfg.inputs, input_shapes=cfg.input_shapes,
                                                     trust_remote_code=True))
        model, inputs, config = base.module, base.inputs, config or base.config
    elif config is not None and manifest.get("model_class") == "PooledClassifier":
        model, config, task = _pooled_classifier(config, manifest)
        inputs = make_inputs(config, "feature-extraction", cfg.inputs, "cpu")
    elif config is not None:
        model = auto_class(task).from_config(config)
        inputs = make_inputs(config, task, cfg.inputs, "cpu")
    else:
        raise CompressionError(f"{folder} has neither a config.json nor a factory source to rebuild the model from")
    model = rebuild(model, manifest, read_weights(folder))
    model.__dict__[HISTORY_ATTR] = tuple(manifest.get("methods", []))
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32
    if dtype != torch.float32:
        inputs = cast_inputs(inputs, dtype)
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


def _pooled_classifier(config: Any, manifest: dict[str, Any]) -> tuple[Any, Any, str]:
    """A compressed head-only checkpoint (encoder + mean pooling + linear head) as one classifier.

    Its config no longer points at a separate head file: the head is inside the weights, so the
    model loads and evaluates as a plain text classifier.
    """
    import copy

    from steelyard.evaluation.heads import HEAD_KEY, LinearHead, PooledClassifier
    from steelyard.models.tasks import auto_class

    record = manifest.get("modules", {}).get("head.classifier")  # a quantized head is a module record
    weight = manifest.get("tensors", {}).get("head.classifier.weight")
    if record is not None and "out_features" in record:
        num_labels, hidden = record["out_features"], record["in_features"]
    elif weight is not None:
        num_labels, hidden = weight["shape"]
    else:
        raise CompressionError("the saved head-only model has no head.classifier layer; the folder is incomplete")
    config = copy.deepcopy(config)
    if hasattr(config, HEAD_KEY):
        delattr(config, HEAD_KEY)
    config.num_labels = num_labels
    model = PooledClassifier(auto_class("feature-extraction").from_config(config), LinearHead(hidden, num_labels))
    return model, config, "text-classification"


def load_compressed(path: str | Path, cfg: LoadConfig | None = None, *, trust_remote_code: bool = False) -> ModelHandle:
    """Load what :meth:`CompressedModel.save` wrote (or any model folder) as a :class:`ModelHandle`.

    A folder whose model was built by a Python factory (``module:function`` in its manifest) loads
    only with ``trust_remote_code`` (here or in ``cfg``): importing a name read from a downloaded
    folder would run its code, the rule transformers applies to ``auto_map``.
    """
    from steelyard.models.loading import LoadConfig, load_model

    folder = Path(path).expanduser()
    if folder.is_file() and folder.suffix == ".onnx":
        return _onnx_file(folder, cfg or LoadConfig())
    manifest = read_manifest(folder)
    if manifest is None:
        return load_model(str(folder), cfg or LoadConfig())
    cfg = cfg or default_load_config(manifest, manifest.get("task"))
    if trust_remote_code:
        cfg = dataclasses.replace(cfg, trust_remote_code=True)
    task = cfg.task or manifest.get("task") or "feature-extraction"
    config = read_config(folder)  # a guarded folder keeps it in steelyard_config.json (see .plain_hf)
    if manifest.get("runtime"):  # a runtime artifact (steelyard.backends): ONNX, OpenVINO IR, torch
        from steelyard.backends.artifact import load_artifact

        return load_artifact(folder, manifest, cfg, task, config)
    if manifest.get("backend") == "onnxruntime":
        return _onnx_folder(folder, manifest, cfg, task, config)
    return _torch_folder(folder, manifest, cfg, task, config)
