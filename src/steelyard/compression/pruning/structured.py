"""Structured pruning: remove FFN neurons, attention heads and experts, or CNN channels, for real.

Transformers whose blocks a family table knows (:mod:`steelyard.families.units`: BERT, RoBERTa,
DistilBERT, GPT-2, Llama / Mistral / Qwen, Mixtral and Qwen-MoE, ViT, T5): the couplings are local
and known — a head (in grouped-query attention: a key / value group) owns rows of the q / k / v
projections and columns of the attention output; an FFN neuron owns a row of every input layer
(gate and up together) and a column of the output layer; an expert owns its slices of the 3-D
expert weights and its router row — so :mod:`steelyard.families.surgery` keeps the rows and
columns of the kept units. Every layer keeps the same number of each, so the config can state the
result (:func:`~steelyard.families.surgery.write_config`); where it cannot (BERT, DistilBERT and
GPT-2 head counts: head size = hidden / heads) the note says so and the saved model loads back
through :func:`steelyard.compression.load_compressed`. Every stack is cut (T5's encoder and
decoder share ``num_heads`` and ``d_ff``).

CNNs: torch-pruning's DependencyGraph (through ``MetaPruner``) finds every layer coupled to a
channel (BatchNorm, residual adds, the next conv) and prunes them together; Linear layers are
left whole except for the input columns that follow pruned channels.

Importance: the L1 / L2 norm of the weights a unit owns, or ``taylor`` — the first-order loss
change on data (:mod:`steelyard.compression.pruning.taylor`), scored on the unpruned model before
anything is sliced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import NotApplicableError, TransformResult, model_kind
from steelyard.compression.pruning.config import StructuredPruneConfig
from steelyard.families import UnitSet, UnitStack, model_config, unit_stacks
from steelyard.families.surgery import (
    cut,
    heads_to_keep,
    magnitude,
    sync_model_counts,
    top_units,
    unit_sets,
    write_config,
)
from steelyard.models.handle import ModelHandle


def kept_count(total: int, amount: float, round_to: int) -> int:
    """How many of ``total`` units remain after removing ``amount``, rounded to a multiple of ``round_to``.

    Rounds to the nearest multiple, never below one multiple (or one unit when total < round_to)
    and never above ``total``.
    """
    raw = total * (1.0 - amount)
    if round_to <= 1 or total < round_to:
        return max(1, min(total, round(raw)))
    return min(total, max(round_to, round_to * round(raw / round_to)))


def _taylor_note(batches: int, labels: bool) -> str:
    target = "the data's labels" if labels else "pseudo-labels (the unpruned model's own predictions)"
    return f"importance: first-order Taylor |sum of w * dL/dw| over {batches} batches, loss against {target}"


def _kinds(cfg: StructuredPruneConfig) -> list[str]:
    return [k for k, on in (("ffn", cfg.amount > 0), ("heads", cfg.heads > 0), ("experts", cfg.experts > 0)) if on]


def _keep_of(units: UnitSet, cfg: StructuredPruneConfig) -> int:
    """How many units of ``units`` stay under ``cfg``."""
    if units.kind == "heads":
        return heads_to_keep(units.count * units.group, units.group, cfg.heads)
    if units.kind == "experts":
        return max(1, units.count - round(units.count * cfg.experts))
    return kept_count(units.count, cfg.amount, cfg.round_to)


def _selection(sets: list[UnitSet], cfg: StructuredPruneConfig, scores: dict[Any, torch.Tensor],
               stacks: list[UnitStack]) -> list[tuple[UnitSet, torch.Tensor]]:
    """The kept units of every set: the top scores, or for families that keep the same heads in every
    block of a stack (T5), the top scores summed over the stack."""
    score = {s.key: scores[s.key] if s.key in scores else magnitude(s, cfg.importance) for s in sets}
    shared: dict[tuple[int, Any], torch.Tensor] = {}
    owner: dict[int, int] = {}
    for i, stack in enumerate(stacks):
        for block in stack.layers:
            owner[id(block)] = i
    for s in sets:
        if s.kind == "heads" and stacks[owner[id(s.block)]].units.same_heads_per_stack:
            k = (owner[id(s.block)], s.table)
            shared[k] = shared[k] + score[s.key] if k in shared else score[s.key].clone()
    out = []
    for s in sets:
        keep = _keep_of(s, cfg)
        if keep >= s.count:
            continue
        k = (owner[id(s.block)], s.table)
        out.append((s, top_units(shared[k] if s.kind == "heads" and k in shared else score[s.key], keep)))
    return out


def _counts(sets: list[UnitSet], kind: str) -> list[int]:
    return [s.count * (s.group if kind == "heads" else 1) for s in sets if s.kind == kind]


def _describe(before: list[UnitSet], after: list[UnitSet], notes: list[str], details: dict[str, Any]) -> None:
    names = {"ffn": ("FFN neurons per layer", "layers"), "heads": ("attention heads per layer", "attention layers"),
             "experts": ("experts per layer", "layers"), "expert-ffn": ("neurons per expert", "experts"),
             "shared-ffn": ("shared-expert neurons per layer", "layers")}
    for kind, (label, unit) in names.items():
        old, new = _counts(before, kind), _counts(after, kind)
        if not old or old == new:
            continue
        removed = sum(old) - sum(new)
        where = f"{len(old)} {unit}"
        first_old, first_new = old[0], new[0]
        notes.append(f"{label}: {first_old} → {first_new} ({removed} removed in {where})")
        key = kind.replace("-", "_")
        details.update({f"{key}_before": first_old, f"{key}_after": first_new})


def _prune_transformer(handle: ModelHandle, cfg: StructuredPruneConfig, data: Iterable[Any] | None) -> TransformResult:
    stacks = unit_stacks(handle.module)
    assert stacks
    config = model_config(handle.module) or handle.config
    kinds = _kinds(cfg)
    notes: list[str] = []
    details: dict[str, Any] = {"importance": cfg.importance}
    before = unit_sets(stacks, ("heads", "ffn", "experts"))
    if "experts" in kinds and not any(s.kind == "experts" for s in before):
        raise NotApplicableError(f"prune:structured: experts= applies to mixture-of-experts models; "
                                 f"{type(handle.module).__name__} has no experts")
    for s in before:  # refuse a cut that splits a key / value group before any gradient pass
        if s.kind in kinds:
            _keep_of(s, cfg)
    scores: dict[Any, torch.Tensor] = {}
    if cfg.importance == "taylor":
        from steelyard.compression.pruning.taylor import taylor_batches, transformer_scores

        batches = taylor_batches(data, cfg.batches)
        taylor = transformer_scores(handle, stacks, batches, kinds)
        scores = taylor.scores
        notes.append(_taylor_note(taylor.batches, taylor.labels))
        details.update(taylor_batches=taylor.batches, taylor_labels=taylor.labels)
    if "experts" in kinds:  # whole experts first; their neurons are then cut among the kept ones
        chosen = _selection(unit_sets(stacks, ("experts",)), cfg, scores, stacks)
        kept_experts = {s.key[0]: kept for s, kept in chosen}
        cut(chosen)
        scores = {_renumber(k, kept_experts): v for k, v in scores.items() if _survives(k, kept_experts)}
    other = [k for k in kinds if k != "experts"]
    if other:
        cut(_selection(unit_sets(stacks, other), cfg, scores, stacks))
    after = unit_sets(stacks, ("heads", "ffn", "experts"))
    _describe(before, after, notes, details)
    cannot = write_config(config, stacks)
    sync_model_counts(handle.module, config, stacks)
    if cannot:
        notes.append("; ".join(cannot) + ": load the saved model with steelyard.compression.load_compressed")
    return TransformResult(module=handle.module, notes=notes, details=details, config=config)


def _survives(key: tuple[Any, ...], kept: dict[int, torch.Tensor]) -> bool:
    position, kind, _, expert = key
    return kind != "expert-ffn" or position not in kept or bool((kept[position] == expert).any())


def _renumber(key: tuple[Any, ...], kept: dict[int, torch.Tensor]) -> tuple[Any, ...]:
    """The key of an expert's neuron scores once the dropped experts are gone (expert ids close up)."""
    position, kind, table, expert = key
    if kind != "expert-ffn" or position not in kept:
        return key
    return position, kind, table, int((kept[position] < expert).sum())


def _prune_cnn(handle: ModelHandle, cfg: StructuredPruneConfig, data: Iterable[Any] | None) -> TransformResult:
    try:
        import torch_pruning as tp
    except ImportError as exc:
        from steelyard.compression.base import BackendUnavailableError

        raise BackendUnavailableError(
            "prune:structured on a CNN needs torch-pruning: pip install 'steelyard[compress]'"
        ) from exc
    model = handle.module
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    before = sum(m.out_channels for m in convs)
    ignored = [m for m in model.modules() if isinstance(m, nn.Linear)]
    batches: list[Any] = []
    if cfg.importance == "taylor":
        from steelyard.compression.pruning.taylor import AccumulatedTaylor, taylor_batches

        batches = taylor_batches(data, cfg.batches)  # fail before building the graph
        importance: Any = AccumulatedTaylor()
    else:
        importance = tp.importance.MagnitudeImportance(p=1 if cfg.importance == "l1" else 2)
    pruner = tp.pruner.MetaPruner(
        model,
        handle.inputs,
        importance=importance,
        pruning_ratio=cfg.amount,
        ignored_layers=ignored,
        round_to=cfg.round_to if cfg.round_to > 1 else None,
    )
    notes: list[str] = []
    details: dict[str, Any] = {"importance": cfg.importance}
    if cfg.importance == "taylor":
        from steelyard.compression.pruning.taylor import cnn_taylor

        labels = cnn_taylor(handle, pruner, importance, batches)
        notes.append(_taylor_note(len(batches), labels))
        details.update(taylor_batches=len(batches), taylor_labels=labels)
    with torch.no_grad():
        pruner.step()
    after = sum(m.out_channels for m in convs)
    notes[:0] = [
        f"conv output channels: {before} → {after} over {len(convs)} conv layers (torch-pruning dependency graph)",
        "pruned channel widths do not fit the original config: load the saved model with "
        "steelyard.compression.load_compressed",
    ]
    details.update(channels_before=before, channels_after=after)
    return TransformResult(module=model, notes=notes, details=details)


def apply(handle: ModelHandle, cfg: StructuredPruneConfig, data: Any = None) -> TransformResult:
    kind = model_kind(handle.module)
    if kind == "transformer":
        return _prune_transformer(handle, cfg, data)
    if kind == "cnn":
        if cfg.heads > 0 or cfg.experts > 0:
            raise NotApplicableError(
                "prune:structured: heads apply to transformers, and this model is a CNN "
                "(set heads=0 and use amount to prune channels)"
            )
        return _prune_cnn(handle, cfg, data)
    raise NotApplicableError(
        "prune:structured supports transformers whose blocks steelyard's family tables know (heads, FFN neurons, "
        f"experts) and CNNs (channels); found neither in {type(handle.module).__name__}"
    )
