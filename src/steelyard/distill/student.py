"""Build the student: fewer of the teacher's layers, a narrower config, or any other model.

Specs (``--student``):

- ``layers=K`` keeps K of the teacher's layers, evenly spread from the first
  (:func:`steelyard.families.spread`, the rule ``prune:layers`` uses too): teacher layer
  ``floor(i · N / K)`` becomes student layer ``i`` (6 → 3 keeps 0, 2, 4; 12 → 6 keeps every other
  layer, DistilBERT's initialisation). Embeddings, pooler and classification head are copied, so
  the student starts as the teacher with layers skipped. The alternative of keeping the first and
  the last layer (DistilBERT's script took 0, 2, 4, 7, 9, 11 of 12) is not used: the spread rule is
  one formula for every N and K, and distillation retrains what sits on top of the last kept layer.
- ``hidden=H`` (optionally ``heads=A``, ``ffn=F``, combinable with ``layers=K``) builds a smaller
  config of the same model type. The feed-forward width keeps the teacher's ratio to the hidden
  size unless ``ffn`` is given; the head count stays the teacher's unless ``heads`` is given. No
  teacher tensor has the new shapes, so each one is initialised with the leading slice of the
  teacher's (the first H of every hidden dimension: weight selection, Xu et al. 2023), which keeps
  the residual stream's coordinates consistent across layers and starts far better than random
  for embeddings. The notes say how many tensors were copied whole, sliced or left random.
- anything else is a model source (hub id, folder, ``pkg.module:factory``) or a ModelHandle: that
  model, whose classes must be the teacher's (a bare encoder gets a new head for them).

The student's Hugging Face config states its own depth and widths, so ``save_pretrained`` and
``from_pretrained`` round-trip.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.labels import model_label_names
from steelyard.families import CONFIG_KEYS, config_int, find_blocks, keep_config_layers, spread
from steelyard.models.handle import ModelHandle

#: Spec keys; each sets the config attribute :data:`steelyard.families.CONFIG_KEYS` names for it.
SPEC_KEYS: tuple[str, ...] = ("layers", "hidden", "heads", "ffn")
_SPEC = re.compile(r"^\s*[a-z_]+\s*=\s*[^,]*(\s*,\s*[a-z_]+\s*=\s*[^,]*)*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class StudentSpec:
    """A student described relative to its teacher; None keeps the teacher's value."""

    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    ffn: int | None = None

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (("layers", self.layers), ("hidden", self.hidden),
                                                  ("heads", self.heads), ("ffn", self.ffn)) if v is not None)


@dataclass
class Student:
    """The student module and what the distillation run needs to know about it."""

    module: nn.Module
    notes: list[str]
    #: Where the student's preprocessing (tokenizer, image settings) comes from: the teacher for a
    #: spec, the student's own handle for a model source.
    preprocessing: ModelHandle
    label: str
    spec: StudentSpec | None = None
    #: Teacher layer copied into each student layer (specs with ``layers=``), else None.
    kept: list[int] | None = None
    details: dict[str, Any] = field(default_factory=dict)


def parse_spec(text: str) -> StudentSpec | None:
    """The spec in ``text`` (``layers=3,hidden=256``), or None when ``text`` names a model instead."""
    if Path(text).expanduser().exists() or not _SPEC.match(text):
        return None
    values: dict[str, int] = {}
    for part in text.split(","):
        key, _, raw = (s.strip() for s in part.partition("="))
        key = key.lower()
        if key not in SPEC_KEYS:
            keys = ", ".join(k + "=N" for k in SPEC_KEYS)
            raise ConfigError(f"unknown student spec key {key!r} in {text!r}; use {keys}")
        if key in values:
            raise ConfigError(f"student spec {text!r} gives {key} twice")
        try:
            number = int(raw)
        except ValueError:
            raise ConfigError(f"student spec {key}= needs a whole number, got {raw!r}") from None
        if number < 1:
            raise ConfigError(f"student spec {key}= must be at least 1, got {number}")
        values[key] = number
    return StudentSpec(**values)


# --- model inspection -------------------------------------------------------------------------------


def hidden_targets(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer whose output each student layer is matched to in hidden-state distillation.

    Student layer ``i`` stands in for the block of teacher layers from ``spread[i]`` up to the
    next kept one, so it is matched to the output of that block's last layer:
    ``floor((i + 1) · N / K) − 1`` (6 → 3: layers 1, 3, 5). The student's last layer thus meets the
    teacher's last, which is what the copied pooler and classifier read (TinyBERT's uniform map).
    """
    return [(i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)]


def _hf_config(teacher: ModelHandle) -> Any:
    config = getattr(teacher.module, "config", None) or teacher.config
    if config is None or not getattr(config, "model_type", None):
        raise ConfigError(
            f"a student spec (layers=, hidden=) needs a Hugging Face teacher with a config; {teacher.name!r} has "
            "none: pass a student model instead"
        )
    return config


# --- students from a spec ---------------------------------------------------------------------------


def _student_config(teacher: ModelHandle, spec: StudentSpec) -> tuple[Any, list[int] | None, dict[str, Any]]:
    """The student's config, the teacher layers it keeps (None: same depth), and before/after numbers."""
    config = copy.deepcopy(_hf_config(teacher))
    details: dict[str, Any] = {}
    found = find_blocks(teacher.module)
    depth = found.count_key(config) if found is not None else None
    kept: list[int] | None = None
    if spec.layers is not None:
        if found is None or depth is None:
            raise ConfigError(
                f"layers={spec.layers} needs a transformer with one stack of layers and a layer count in its config; "
                f"{type(teacher.module).__name__} has none (pass a smaller model as the student instead)"
            )
        total = len(found)
        if spec.layers > total:
            raise ConfigError(f"layers={spec.layers} is more than the teacher's {total} layers")
        kept = spread(total, spec.layers)
        keep_config_layers(config, depth, kept, total)
        details.update(layers_before=total, layers_after=spec.layers, kept=kept)
    widths = {k: config_int(config, k) for k in ("hidden", "heads", "ffn")}
    for key in ("hidden", "heads", "ffn"):
        if getattr(spec, key) is not None and widths[key] is None:
            raise ConfigError(f"{key}= does not apply to {config.model_type!r}: its config has no "
                              f"{' / '.join(CONFIG_KEYS[key])}")
    if spec.hidden is not None or spec.heads is not None or spec.ffn is not None:
        hidden_attr, hidden_t = widths["hidden"] or (None, 0)
        heads = spec.heads or (widths["heads"][1] if widths["heads"] else None)
        hidden = spec.hidden or hidden_t
        if heads and hidden % heads:
            raise ConfigError(f"hidden size {hidden} is not divisible by the {heads} attention heads; "
                              "choose a multiple, or set heads=N")
        if spec.hidden is not None and hidden_attr is not None:
            setattr(config, hidden_attr, hidden)
        if spec.heads is not None and widths["heads"] is not None:
            _set_heads(config, widths["heads"], spec.heads)
        _follow_head_dim(config, hidden_t, widths["heads"][1] if widths["heads"] else None, hidden, heads)
        if widths["ffn"] is not None:
            scaled = max(1, round(widths["ffn"][1] * hidden / hidden_t)) if hidden_t else widths["ffn"][1]
            ffn = spec.ffn or scaled
            setattr(config, widths["ffn"][0], ffn)
            details.update(ffn_before=widths["ffn"][1], ffn_after=ffn)
        details.update(hidden_before=hidden_t, hidden_after=hidden, heads_after=heads)
    if hasattr(config, "_name_or_path"):
        config._name_or_path = ""
    return config, kept, details


def _set_heads(config: Any, teacher: tuple[str, int], heads: int) -> None:
    """Set the query-head count; a grouped-query config keeps its group size (query heads per kv head)."""
    key, teacher_heads = teacher
    kv = getattr(config, "num_key_value_heads", None)
    if isinstance(kv, int) and kv > 0 and teacher_heads % kv == 0:
        group = teacher_heads // kv
        if heads % group:
            raise ConfigError(f"heads={heads} does not fit the teacher's grouped-query attention ({group} query "
                              f"heads per key / value head): choose a multiple of {group}")
        config.num_key_value_heads = heads // group
    setattr(config, key, heads)


def _follow_head_dim(config: Any, hidden_t: int, heads_t: int | None, hidden: int, heads: int | None) -> None:
    """A config that spells out ``head_dim`` as hidden / heads (Llama) gets the student's hidden / heads."""
    head_dim = getattr(config, "head_dim", None)
    if isinstance(head_dim, int) and heads_t and heads and head_dim * heads_t == hidden_t:
        config.head_dim = hidden // heads


def _layer_key_map(prefix: str | None, kept: list[int] | None) -> Callable[[str], str]:
    """Student state-dict key → teacher key (student layer i reads teacher layer kept[i])."""

    def teacher_key(key: str) -> str:
        if prefix is None or kept is None or not key.startswith(prefix + "."):
            return key
        index, _, rest = key[len(prefix) + 1 :].partition(".")
        return f"{prefix}.{kept[int(index)]}.{rest}" if index.isdigit() and int(index) < len(kept) else key

    return teacher_key


def _inherit(student: nn.Module, teacher: nn.Module, kept: list[int] | None) -> dict[str, int]:
    """Copy teacher tensors into the student: whole where shapes match, the leading slice where
    every student dimension is smaller; counts per outcome."""
    found = find_blocks(teacher)
    key_of = _layer_key_map(found.path if found else None, kept)
    source = teacher.state_dict()
    counts = {"copied": 0, "sliced": 0, "random": 0}
    target = student.state_dict()
    with torch.no_grad():
        for key, tensor in target.items():
            src = source.get(key_of(key))
            if src is None or src.dim() != tensor.dim() or src.dtype != tensor.dtype:
                counts["random"] += 1
            elif src.shape == tensor.shape:
                tensor.copy_(src)
                counts["copied"] += 1
            elif all(s <= t for s, t in zip(tensor.shape, src.shape, strict=True)):
                tensor.copy_(src[tuple(slice(0, s) for s in tensor.shape)])
                counts["sliced"] += 1
            else:
                counts["random"] += 1
    return counts


def from_spec(teacher: ModelHandle, spec: StudentSpec, seed: int = 0) -> Student:
    """A student of the teacher's model type built from ``spec`` (see the module docstring)."""
    if teacher.on_meta:
        raise ConfigError(f"teacher {teacher.name!r} has no weights (config only): nothing to build a student from")
    config, kept, details = _student_config(teacher, spec)
    torch.manual_seed(seed)
    try:
        module = type(teacher.module)(config)
    except (ValueError, RuntimeError, AssertionError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"student spec {spec} gives an invalid {config.model_type} config: {first}") from exc
    module.to(teacher.device).eval()
    counts = _inherit(module, teacher.module, kept)
    details.update(counts)
    notes = []
    if kept is not None:
        notes.append(f"layers: {details['layers_before']} → {details['layers_after']}, student layer i starts as "
                     f"teacher layer {kept} (evenly spread from the first)")
    if "hidden_after" in details:
        notes.append(f"width: hidden {details['hidden_before']} → {details['hidden_after']}, "
                     f"{details['heads_after']} heads" + (f", FFN {details['ffn_before']} → {details['ffn_after']}"
                                                         if "ffn_after" in details else ""))
    if counts["sliced"] or counts["random"]:
        notes.append(f"initialised from the teacher: {counts['copied']} tensors copied, {counts['sliced']} "
                     f"leading slices of larger teacher tensors, {counts['random']} random (seed {seed})")
    else:
        notes.append(f"initialised from the teacher: all {counts['copied']} tensors copied (embeddings, kept "
                     "layers, pooler and head)")
    return Student(module, notes, teacher, f"{spec} of {teacher.name}", spec, kept, details)


# --- students that are models of their own ----------------------------------------------------------


def teacher_classes(teacher: ModelHandle) -> int:
    """Number of classes the teacher predicts (from its config; a forward for plain modules)."""
    from steelyard.evaluation.adapters import logits_of

    config = getattr(teacher.module, "config", None) or teacher.config
    k = getattr(config, "num_labels", None) if config is not None else None
    if isinstance(k, int) and k > 0 and teacher.source_kind != "factory":
        return k
    with torch.inference_mode():
        return int(logits_of(teacher.forward()).shape[-1])


def _label_names(handle: ModelHandle, k: int) -> list[str] | None:
    config = getattr(handle.module, "config", None) or handle.config
    return model_label_names(config, k) if config is not None else None


def check_same_labels(teacher: ModelHandle, student: ModelHandle) -> list[str]:
    """Notes when the student's head predicts the teacher's classes; DataError when it does not."""
    kt, ks = teacher_classes(teacher), teacher_classes(student)
    names_t, names_s = _label_names(teacher, kt), _label_names(student, ks)

    def show(names: list[str] | None, k: int) -> str:
        return f"{k} classes" + (f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else "")

    if kt != ks:
        raise DataError(f"teacher and student label sets differ: the teacher predicts {show(names_t, kt)}, the "
                        f"student {show(names_s, ks)}; give the student a head for the teacher's classes")
    if names_t and names_s and names_t != names_s:
        order = " in another order" if sorted(names_t) == sorted(names_s) else ""
        raise DataError(f"teacher and student label sets differ{order}: the teacher predicts {show(names_t, kt)}, "
                        f"the student {show(names_s, ks)}")
    if names_t is None or names_s is None:
        return ["teacher and student classes matched by position (one of them has generic label names)"]
    return []


def from_model(teacher: ModelHandle, student: ModelHandle | str, seed: int = 0) -> Student:
    """Another model as the student: its own weights, the teacher's classes (checked, or a new head)."""
    from steelyard.models.loading import load_model
    from steelyard.training.setup import build_classifier, is_headless

    handle = student if isinstance(student, ModelHandle) else load_model(student)
    if handle.on_meta:
        raise ConfigError(f"student {handle.name!r} was loaded from its config only; pass a folder or hub id with "
                          "weights, or a spec such as layers=3 or hidden=256")
    from steelyard.evaluation.predictor import model_modality

    if handle.source_kind != "factory" and model_modality(handle) != model_modality(teacher):
        raise DataError(f"the student {handle.name!r} reads {model_modality(handle)} but the teacher reads "
                        f"{model_modality(teacher)}")
    if handle.task == "causal-lm" or teacher.task == "causal-lm":
        if handle.task != teacher.task:
            raise DataError(f"the student {handle.name!r} is a {handle.task} model and the teacher {teacher.name!r} "
                            f"a {teacher.task} one; a causal LM distils into a causal LM")
        return Student(copy.deepcopy(handle.module), [f"student: {handle.name} with its own weights"], handle,
                       handle.name)
    if handle.source_kind != "factory" and (is_headless(handle.module) or handle.task == "feature-extraction"):
        k = teacher_classes(teacher)
        names = _label_names(teacher, k) or [f"LABEL_{i}" for i in range(k)]
        task = "image-classification" if model_modality(teacher) == "image" else "text-classification"
        module, notes = build_classifier(handle, task, names, seed)
        return Student(module.to(handle.device), [f"student {handle.name}: {n}" for n in notes], handle, handle.name)
    notes = check_same_labels(teacher, handle)
    module = copy.deepcopy(handle.module)
    return Student(module, [f"student: {handle.name} with its own weights", *notes], handle, handle.name)


def build_student(teacher: ModelHandle, spec: str | ModelHandle, seed: int = 0) -> Student:
    """The student for ``spec`` (a spec string, a model source or a handle) with its preprocessing."""
    if isinstance(spec, str):
        parsed = parse_spec(spec)
        if parsed is not None:
            return from_spec(teacher, parsed, seed)
        if "=" in spec and not Path(spec).expanduser().exists():
            raise ConfigError(f"cannot read the student spec {spec!r}; write e.g. layers=3, hidden=256 or "
                              "layers=3,hidden=256")
    return from_model(teacher, spec, seed)


def make_student(teacher: ModelHandle, spec: str | ModelHandle, *, seed: int = 0) -> tuple[nn.Module, list[str]]:
    """The student module for ``spec`` and notes on how it was built (see the module docstring).

    ``spec`` is ``"layers=K"``, ``"hidden=H"`` (with optional ``heads=``, ``ffn=``; combinable),
    a model source string or a :class:`~steelyard.models.handle.ModelHandle`. Raises ConfigError
    for a spec that does not fit the teacher and DataError for a student with other classes.
    """
    student = build_student(teacher, spec, seed)
    return student.module, student.notes
