"""Turn whatever model the user named into the module that will be trained.

- A classifier whose head already has one output per class keeps its head.
- An embedding model, a head of the wrong size, or a causal LM used for classification gets a
  fresh classification head (transformers' ``AutoModelFor...Classification`` built from the
  same config) with the pretrained body copied in, in memory, without re-reading files.
- A model known only by its config (meta device) is initialised at random from the seed: it is
  trained from scratch, and the result says so.
- ``freeze_encoder`` on an embedding model with text trains a linear head on cached mean-pooled
  embeddings ("head-only"); on any other model it freezes everything but the head
  ("frozen-base").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from steelyard.data.dataset import TaskDataset
from steelyard.errors import DataError
from steelyard.evaluation.adapters import Adapter, TextAdapter
from steelyard.evaluation.heads import HEAD_KEY, LinearHead, has_pooled_head
from steelyard.evaluation.labels import match_labels
from steelyard.evaluation.predictor import check_modality, head_size, make_adapter
from steelyard.models.handle import ModelHandle
from steelyard.models.tasks import auto_class
from steelyard.training.config import FinetuneConfig


@dataclass
class Prepared:
    """The module to train and everything needed to feed, evaluate and save it."""

    mode: str  # "full" | "head-only" | "frozen-base"
    module: torch.nn.Module
    adapter: Adapter
    handle: ModelHandle
    label_names: list[str]
    #: dataset label id → model class id (identity unless an existing head names its classes).
    to_model: list[int] | None = None
    encoder: torch.nn.Module | None = None
    hf: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def tokenizer(self) -> Any | None:
        return getattr(self.adapter, "tokenizer", None)


def is_headless(module: torch.nn.Module) -> bool:
    """True for a bare transformers body (``BertModel``), which has no task head."""
    return getattr(module, "base_model", None) is module


def _label_config(config: Any, names: list[str]) -> Any:
    config = copy.deepcopy(config)
    config.num_labels = len(names)
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}
    if hasattr(config, HEAD_KEY):
        delattr(config, HEAD_KEY)
    return config


def build_classifier(handle: ModelHandle, task: str, names: list[str], seed: int) -> tuple[torch.nn.Module, list[str]]:
    """A ``task`` classifier with ``len(names)`` classes carrying ``handle``'s pretrained body."""
    config = _label_config(handle.config, names)
    torch.manual_seed(seed)
    try:
        module = auto_class(task).from_config(config)
    except ValueError as exc:
        raise DataError(
            f"{handle.name!r} ({getattr(config, 'model_type', '?')}) cannot be given a {task} head: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    if handle.on_meta:
        return module, [f"{handle.name} has no weights here: trained from a random initialisation (seed {seed})"]
    source = handle.module.state_dict()
    if is_headless(handle.module) or has_pooled_head(handle.config):
        target = module.base_model
        own = target.state_dict()
        _refuse_reshaped(handle.name, source, own)
        keep = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
        target.load_state_dict(keep, strict=False)
        missing = [k for k in own if k not in keep]
        notes = [f"new {len(names)}-class head on the pretrained body"]
    else:
        own = module.state_dict()
        _refuse_reshaped(handle.name, source, own)
        keep = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
        module.load_state_dict(keep, strict=False)
        missing = [k for k in own if k not in keep]
        old = int(getattr(handle.config, "num_labels", 0) or 0)
        kept_head = not any(_is_head_key(k) for k in missing)
        notes = ["kept the model's classification head"] if kept_head else [
            f"replaced the {old}-class head with a new {len(names)}-class head"
        ]
    if not keep:
        raise DataError(f"none of {handle.name!r}'s weights fit a {task} model of the same config")
    body_missing = [k for k in missing if not _is_head_key(k) and "pooler" not in k]
    if body_missing:
        notes.append(f"{len(body_missing)} body tensors were not in the source and start at random")
    return module, notes


def _refuse_reshaped(name: str, source: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    """Body tensors whose shapes the config cannot express (a model pruned per layer, e.g. heads) would
    start at random in a model rebuilt from that config: refuse rather than train a different model."""
    reshaped = [k for k, v in source.items() if k in own and own[k].shape != v.shape and not _is_head_key(k)]
    if reshaped:
        k = reshaped[0]
        raise DataError(
            f"{name!r} has {len(reshaped)} body tensors whose shapes its config cannot express (e.g. {k}: "
            f"{tuple(source[k].shape)} vs {tuple(own[k].shape)} from the config; a per-layer pruned model): fine-tune "
            "it in the recipe that pruned it (compress --recipe \"prune:...; finetune:...\")")


def _is_head_key(key: str) -> bool:
    return key.startswith(("classifier", "score", "head", "fc.", "lm_head"))


def freeze_body(module: torch.nn.Module, hf: bool) -> int:
    """Freeze every parameter but the head's; returns how many parameters stay trainable."""
    if hf and getattr(module, "base_model", None) is not None and module.base_model is not module:
        for p in module.base_model.parameters():
            p.requires_grad_(False)
    else:
        children = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
        last = children[-1] if children else None
        for m in children:
            for p in m.parameters(recurse=False):
                p.requires_grad_(m is last)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def hidden_size(encoder: torch.nn.Module, config: Any) -> int:
    from steelyard.families import config_number

    value = config_number(config, "hidden")
    if value is not None:
        return value
    raise DataError("cannot tell the embedding width of this encoder (its config has no hidden_size)")


def prepare(handle: ModelHandle, dataset: TaskDataset, cfg: FinetuneConfig) -> Prepared:
    """Decide the training mode and build the module; see the module docstring."""
    check_modality(handle, dataset)
    names = list(dataset.label_names)
    if dataset.task == "causal-lm":
        if handle.task != "causal-lm" and handle.source_kind != "factory":
            raise DataError(f"a causal-LM dataset needs a causal language model; {handle.name!r} is {handle.task}")
        module = _materialise(handle, "causal-lm", cfg.seed)
        adapter = make_adapter(handle, "causal-lm", max_length=cfg.max_length, tokenizer=cfg.tokenizer)
        notes = ["causal LM: the whole model is trained (freeze_encoder does not apply)"] if cfg.freeze_encoder else []
        return Prepared("full", module, adapter, handle, [], None, hf=is_hf(module), notes=notes)

    task = "image-classification" if dataset.modality == "image" else "text-classification"
    adapter = make_adapter(handle, task, max_length=cfg.max_length, tokenizer=cfg.tokenizer)
    if isinstance(adapter, TextAdapter) and getattr(handle.config, "pad_token_id", 0) is None:
        handle.config.pad_token_id = adapter.tokenizer.pad_token_id

    if handle.source_kind == "factory":
        module = copy.deepcopy(handle.module)
        k = head_size(module, handle, adapter, dataset)
        labels = match_labels(handle.name, k, None, names)
        prepared = Prepared("full", module, adapter, handle, names, labels.to_model, hf=is_hf(module))
        if cfg.freeze_encoder:
            prepared.mode = "frozen-base"
            freeze_body(module, hf=False)
        return prepared

    pooled = has_pooled_head(handle.config)
    if cfg.freeze_encoder and task == "text-classification" and (handle.task == "feature-extraction" or pooled):
        # Shared with the caller's handle, not copied: it only runs under inference_mode and never
        # enters the optimizer, so it stays frozen without touching its requires_grad flags.
        encoder = _materialise(handle, "feature-extraction", cfg.seed).eval()
        torch.manual_seed(cfg.seed)
        head = LinearHead(hidden_size(encoder, handle.config), len(names))
        notes = ["head-only: a linear head on frozen mean-pooled embeddings"]
        return Prepared("head-only", head, adapter, handle, names, None, encoder=encoder, notes=notes)

    to_model = None
    k = int(getattr(handle.config, "num_labels", 0) or 0)
    if not is_headless(handle.module) and not pooled and k == len(names) and handle.task != "causal-lm":
        labels = match_labels(handle.name, k, handle.config, names)
        to_model, names = labels.to_model, labels.names
    module, notes = build_classifier(handle, task, names, cfg.seed)
    prepared = Prepared("full", module, adapter, handle, names, to_model, notes=notes)
    if cfg.freeze_encoder:
        prepared.mode = "frozen-base"
        trainable = freeze_body(module, hf=True)
        prepared.notes.append(f"frozen body: {trainable:,} head parameters train")
    return prepared


def _materialise(handle: ModelHandle, task: str, seed: int) -> torch.nn.Module:
    """The handle's module with real weights (a random init from the config when it has none)."""
    if not handle.on_meta:
        return copy.deepcopy(handle.module) if task != "feature-extraction" else handle.module
    torch.manual_seed(seed)
    return auto_class(task).from_config(copy.deepcopy(handle.config))


def is_hf(module: torch.nn.Module) -> bool:
    """Whether ``module`` saves itself as a transformers model folder (``save_pretrained`` + config)."""
    return hasattr(module, "save_pretrained") and getattr(module, "config", None) is not None
