"""Taylor (gradient) importance: how much the loss would change if a unit were removed.

Removing a unit sets the weights it owns to zero. To first order the loss then changes by
ΔL ≈ −Σ w·∂L/∂w over those weights, so a unit's importance on one batch is |Σ w·∂L/∂w|
(Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR 2019), and the
scores of the calibration batches are added up. Summing the *absolute* per-batch estimates
matters: at a trained model the gradient averaged over the data is close to zero, so scoring the
summed gradient would rank units by noise.

The owned weights:

* an FFN neuron: its row of every FFN input layer (weights and bias; BERT's ``intermediate.dense``,
  Llama's ``gate_proj`` and ``up_proj``) and its column of the output layer;
* an attention head (a key / value group under GQA): its rows of query, key and value (weights and
  biases) and its columns of the attention output;
* an expert: its slices of the 3-D expert weights and its router row; one expert's neuron: rows
  ``n`` and ``width + n`` of its ``gate_up_proj`` and column ``n`` of its ``down_proj`` —
  the owners are :func:`steelyard.families.surgery.unit_sets`, the description the cut uses;
* a CNN channel: torch-pruning's dependency group (the conv's output channel, its BatchNorm, the
  next layer's input channel), scored by ``tp.importance.TaylorImportance(multivariable=True)``,
  which is the same |Σ w·∂L/∂w| per coupled layer, averaged over the group.

The loss is cross-entropy with the batch's ``labels`` when it has them, else with pseudo-labels:
the arg-max of the unpruned model's own logits, so the score measures how far removing a unit
moves the model away from its current predictions. Gradient passes run in eval mode (no dropout)
and only the weights being scored require gradients; the model's flags are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from steelyard.compression.base import CalibrationError, NotApplicableError, first_line
from steelyard.compression.fidelity import primary_output
from steelyard.families import UnitStack, unit_stacks
from steelyard.families.surgery import owned_params, taylor_contribution, unit_sets
from steelyard.models.handle import ModelHandle

METHOD = "prune:structured"
LOGIT_OUTPUTS = ("logits", "output", "output[0]")


def taylor_batches(data: Iterable[Any] | None, limit: int) -> list[Any]:
    """At most ``limit`` batches; no data → :class:`CalibrationError` (gradients need inputs)."""
    from steelyard.compression.quantization.calibration import calibration_batches

    return calibration_batches(
        data, limit, METHOD,
        missing=f"{METHOD}: importance=taylor needs data to compute gradients: pass data=<batches of model "
                "inputs, optionally with labels> (CLI: --data), or use importance=l1 or l2, which need none",
        empty=f"{METHOD}: importance=taylor got data with no batch in it",
    )


def split_batch(handle: ModelHandle, batch: Any) -> tuple[Any, torch.Tensor | None]:
    """(model inputs shaped like ``handle.inputs``, labels or None) of one batch.

    Dict batches may carry ``labels``; keys starting with ``_`` are dropped (training targets).
    Tuple batches are inputs only.
    """
    if isinstance(batch, torch.Tensor):
        return (batch,), None
    if isinstance(batch, dict):
        labels = batch.get("labels")
        inputs = {k: v for k, v in batch.items() if k != "labels" and not k.startswith("_")}
        if not isinstance(handle.inputs, dict):
            return tuple(inputs.values()), labels
        return inputs, labels
    return tuple(batch), None


def task_loss(logits: torch.Tensor, labels: torch.Tensor | None, task: str) -> torch.Tensor:
    """Cross-entropy against ``labels`` (next-token for causal LMs), or against the logits' arg-max."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if labels is None:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), logits.detach().argmax(-1).reshape(-1))
    labels = labels.to(logits.device).long()
    if task == "causal-lm" and logits.dim() == 3:
        logits, labels = logits[:, :-1], labels[:, 1:]
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise CalibrationError(
            f"{METHOD}: labels of shape {tuple(labels.shape)} do not match logits of shape {tuple(logits.shape)}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


@contextmanager
def gradients_for(module: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Only ``params`` require gradients, the model runs in eval mode; both restored afterwards."""
    flags = {p: p.requires_grad for p in module.parameters()}
    modes = {m: m.training for m in module.modules()}
    wanted = set(params)
    try:
        for p in flags:
            p.requires_grad_(p in wanted)
            p.grad = None
        module.eval()
        yield
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = None
        for m, training in modes.items():
            m.training = training


def backward_passes(
    handle: ModelHandle, batches: list[Any], params: list[nn.Parameter], after_backward: Callable[[], None]
) -> bool:
    """One forward/backward per batch with gradients for ``params``; ``after_backward`` reads them.

    Returns whether real labels were used (else pseudo-labels). Gradients are cleared between batches.
    """
    used_labels = False
    with gradients_for(handle.module, params):
        for batch in batches:
            inputs, labels = split_batch(handle, batch)
            try:
                name, logits = primary_output(handle.forward(inputs))
            except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as exc:
                raise CalibrationError(f"{METHOD}: the model rejected a data batch: {first_line(exc)}") from exc
            if name not in LOGIT_OUTPUTS:
                raise NotApplicableError(
                    f"{METHOD}: importance=taylor needs a model with logits (a classification or LM head); "
                    f"this one outputs {name} — use importance=l1 or l2"
                )
            used_labels = used_labels or labels is not None
            task_loss(logits, labels, handle.task).backward()
            with torch.no_grad():
                after_backward()
            for p in params:
                p.grad = None
    return used_labels


@dataclass
class TransformerScores:
    """Accumulated Taylor scores per unit set (keyed like :attr:`steelyard.families.UnitSet.key`)."""

    scores: dict[Any, torch.Tensor]
    batches: int
    labels: bool

    def of(self, kind: str, position: int = 0, expert: int | None = None) -> torch.Tensor:
        """The scores of the first ``kind`` set ("heads", "ffn", "experts", "expert-ffn") in block ``position``."""
        for (at, found, _, index), value in self.scores.items():
            if at == position and found == kind and index == expert:
                return value
        raise KeyError(f"no {kind} scores for block {position}")


def transformer_scores(
    handle: ModelHandle, stacks: list[UnitStack] | None, batches: list[Any], kinds: Iterable[str]
) -> TransformerScores:
    """Σ over batches of |Σ w·∂L/∂w| for every unit of ``kinds`` ("heads", "ffn", "experts") in ``stacks``.

    The units and the weights they own come from :func:`steelyard.families.surgery.unit_sets`, the
    description the cut itself uses; None looks the stacks up from the model (its family).
    """
    stacks = unit_stacks(handle.module) if stacks is None else stacks
    if not stacks:
        raise NotApplicableError(f"{type(handle.module).__name__} has no blocks with known heads and FFN neurons")
    sets = unit_sets(stacks, kinds)
    acc = {s.key: torch.zeros(s.count) for s in sets}

    def accumulate() -> None:
        for s in sets:
            acc[s.key] += taylor_contribution(s).abs()

    labels = backward_passes(handle, batches, owned_params(sets), accumulate)
    return TransformerScores(acc, len(batches), labels)


class AccumulatedTaylor:
    """A torch-pruning importance that returns Taylor scores summed over calibration batches.

    torch-pruning's ``TaylorImportance`` reads ``.grad`` once, at pruning time; this wrapper asks
    it after every batch's backward pass (:meth:`observe`) and hands the per-group sums to the
    pruner, keyed by each group's root layer and pruning function (the groups are rebuilt, equal
    but not identical, when the pruner steps).
    """

    def __init__(self) -> None:
        import torch_pruning as tp

        self.base = tp.importance.TaylorImportance(multivariable=True, normalizer=None)
        self.scores: dict[tuple[Any, Any], torch.Tensor] = {}

    @staticmethod
    def key(group: Any) -> tuple[Any, Any]:
        dep = group[0].dep
        return dep.target.module, dep.handler

    def observe(self, groups: list[Any]) -> None:
        for group in groups:
            imp = self.base(group)
            if imp is None:
                continue
            k = self.key(group)
            self.scores[k] = self.scores[k] + imp.abs() if k in self.scores else imp.abs().clone()

    def __call__(self, group: Any) -> torch.Tensor | None:
        return self.scores.get(self.key(group))


def cnn_taylor(handle: ModelHandle, pruner: Any, importance: AccumulatedTaylor, batches: list[Any]) -> bool:
    """Fill ``importance`` from one backward pass per batch over ``pruner``'s dependency groups."""
    groups = list(pruner.DG.get_all_groups(ignored_layers=pruner.ignored_layers,
                                           root_module_types=pruner.root_module_types))  # fmt: skip
    params = [p for p in handle.module.parameters() if p.is_floating_point()]
    return backward_passes(handle, batches, params, lambda: importance.observe(groups))
