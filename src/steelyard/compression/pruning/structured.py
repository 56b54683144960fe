"""Structured pruning: remove FFN neurons and attention heads, or CNN channels, for real.

Transformers whose blocks :func:`steelyard.families.find_units` knows (the BERT family: bert,
roberta, xlm-roberta, electra, ...): the couplings are local and known — a head owns ``head_size``
rows of query/key/value and as many columns of the attention output; an FFN neuron owns one row of
the FFN's first layer and one column of its second (the module paths are the family's
:class:`~steelyard.families.BlockUnits`) — so the kept rows/columns are sliced into new
``nn.Linear`` layers directly. transformers 5 removed
``prune_heads`` and ``config.pruned_heads``; every layer keeps the same number of heads and
neurons so that ``config.intermediate_size`` stays exact. Head counts cannot be written into a
BERT config (head size = hidden / heads), so head-pruned models load back through
:func:`steelyard.compression.load_compressed`; FFN-only pruning loads with plain ``from_pretrained``.

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
from steelyard.families import BlockUnits, find_units
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


def _norm(t: torch.Tensor, dims: tuple[int, ...], importance: str) -> torch.Tensor:
    t = t.detach().float()
    return t.abs().sum(dims) if importance == "l1" else t.pow(2).sum(dims).sqrt()


def slice_linear(layer: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear keeping output ``rows`` and input ``cols`` (sorted index tensors)."""
    weight = layer.weight.detach()
    if rows is not None:
        weight = weight[rows]
    if cols is not None:
        weight = weight[:, cols]
    bias = layer.bias
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias.detach()[rows] if rows is not None else bias.detach())
    new.train(layer.training)
    return new


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    return torch.sort(torch.topk(scores, keep).indices).values


def head_norms(units: BlockUnits, layer: nn.Module, importance: str) -> torch.Tensor:
    """Magnitude score per head: the L1 / L2 norms of its q/k/v rows plus its output columns."""
    out = units.linear(layer, "attention_output")
    size = units.head_size(layer)
    heads = units.head_count(layer)
    score = torch.zeros(heads)
    for part in ("query", "key", "value"):
        score += _norm(units.linear(layer, part).weight.reshape(heads, size, -1), (1, 2), importance)
    score += _norm(out.weight.reshape(out.out_features, heads, size), (0, 2), importance)
    return score


def ffn_norms(units: BlockUnits, layer: nn.Module, importance: str) -> torch.Tensor:
    """Magnitude score per FFN neuron: the norm of its row in the first FFN layer plus its column in the second."""
    first, second = units.linear(layer, "ffn_in"), units.linear(layer, "ffn_out")
    return _norm(first.weight, (1,), importance) + _norm(second.weight, (0,), importance)


def prune_heads(
    units: BlockUnits, layer: nn.Module, keep: int, importance: str = "l1", scores: torch.Tensor | None = None
) -> int:
    """Keep the ``keep`` most important heads of one transformer block; returns the heads removed.

    ``scores`` (one per head, higher is more important) replaces the magnitude ``importance``.
    """
    heads = units.head_count(layer)
    if keep >= heads:
        return 0
    size = units.head_size(layer)
    kept = _top(head_norms(units, layer, importance) if scores is None else scores, keep)
    idx = (kept[:, None] * size + torch.arange(size)[None, :]).reshape(-1)
    for part in ("query", "key", "value"):
        units.replace(layer, part, slice_linear(units.linear(layer, part), rows=idx))
    units.replace(layer, "attention_output", slice_linear(units.linear(layer, "attention_output"), cols=idx))
    units.set_head_count(layer, keep)
    return heads - keep


def prune_ffn(
    units: BlockUnits, layer: nn.Module, keep: int, importance: str = "l1", scores: torch.Tensor | None = None
) -> int:
    """Keep the ``keep`` most important FFN neurons of one transformer block; returns the neurons removed.

    ``scores`` (one per neuron, higher is more important) replaces the magnitude ``importance``.
    """
    inter, out = units.linear(layer, "ffn_in"), units.linear(layer, "ffn_out")
    if keep >= inter.out_features:
        return 0
    kept = _top(ffn_norms(units, layer, importance) if scores is None else scores, keep)
    units.replace(layer, "ffn_in", slice_linear(inter, rows=kept))
    units.replace(layer, "ffn_out", slice_linear(out, cols=kept))
    return inter.out_features - keep


def _taylor_note(batches: int, labels: bool) -> str:
    target = "the data's labels" if labels else "pseudo-labels (the unpruned model's own predictions)"
    return f"importance: first-order Taylor |sum of w * dL/dw| over {batches} batches, loss against {target}"


def _prune_transformer(handle: ModelHandle, cfg: StructuredPruneConfig, data: Iterable[Any] | None) -> TransformResult:
    found = find_units(handle.module)
    assert found is not None
    units, layers = found
    config = getattr(handle.module, "config", None) or handle.config
    notes: list[str] = []
    details: dict[str, Any] = {"importance": cfg.importance}
    ffn_scores: list[torch.Tensor | None] = [None] * len(layers)
    head_scores: list[torch.Tensor | None] = [None] * len(layers)
    if cfg.importance == "taylor":
        from steelyard.compression.pruning.taylor import taylor_batches, transformer_scores

        batches = taylor_batches(data, cfg.batches)
        taylor = transformer_scores(handle, layers, batches, ffn=cfg.amount > 0, heads=cfg.heads > 0, units=units)
        ffn_scores = list(taylor.ffn) if taylor.ffn is not None else ffn_scores
        head_scores = list(taylor.heads) if taylor.heads is not None else head_scores
        notes.append(_taylor_note(taylor.batches, taylor.labels))
        details.update(taylor_batches=taylor.batches, taylor_labels=taylor.labels)
    if cfg.amount > 0:
        total = units.linear(layers[0], "ffn_in").out_features
        keep = kept_count(total, cfg.amount, cfg.round_to)
        removed = sum(prune_ffn(units, layer, keep, cfg.importance, s)
                      for layer, s in zip(layers, ffn_scores, strict=True))
        if config is not None:
            config.intermediate_size = keep
        details.update(ffn_before=total, ffn_after=keep)
        notes.append(f"FFN neurons per layer: {total} → {keep} ({removed} removed in {len(layers)} layers)")
    if cfg.heads > 0:
        total = units.head_count(layers[0])
        keep = max(1, total - round(total * cfg.heads))
        removed = sum(prune_heads(units, layer, keep, cfg.importance, s)
                      for layer, s in zip(layers, head_scores, strict=True))
        details.update(heads_before=total, heads_after=keep)
        notes.append(f"attention heads per layer: {total} → {keep} ({removed} removed in {len(layers)} layers)")
        notes.append(
            "head counts do not fit a BERT config: load the saved model with steelyard.compression.load_compressed"
        )
    return TransformResult(module=handle.module, notes=notes, details=details, config=config)


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
        if cfg.heads > 0:
            raise NotApplicableError(
                "prune:structured: heads apply to transformers, and this model is a CNN "
                "(set heads=0 and use amount to prune channels)"
            )
        return _prune_cnn(handle, cfg, data)
    raise NotApplicableError(
        "prune:structured supports BERT-family transformers (heads, FFN neurons) and CNNs (channels); "
        f"found neither in {type(handle.module).__name__}"
    )
