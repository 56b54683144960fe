"""Configs of the pruning methods (frozen dataclasses, no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steelyard.compression.options import check_choice, check_fraction, check_positive_int, option
from steelyard.errors import ConfigError


@dataclass(frozen=True)
class UnstructuredPruneConfig:
    """Zero the smallest weights of Linear and Conv layers (masks made permanent).

    ``norm`` ranks single weights by |w| (1) or w² (2), which order them identically; it
    matters for ``granularity="row"``, where whole output rows are ranked by their L1 or L2
    norm. The result is sparse, not smaller or faster: dense kernels still multiply the zeros.
    """

    amount: float = option(0.5, "fraction of the weights set to zero")
    norm: Literal[1, 2] = option(1, "magnitude criterion: L1 or L2 norm")
    scope: Literal["global", "layer"] = option("global", "one threshold for all layers, or the same fraction per layer")
    granularity: Literal["element", "row"] = option("element", "zero single weights, or whole output rows")
    include_head: bool = option(False, "also prune the output head (classifier / lm_head)")

    def __post_init__(self) -> None:
        method = "prune:unstructured"
        check_fraction(method, "amount", self.amount)
        check_choice(method, "norm", self.norm, (1, 2))
        check_choice(method, "scope", self.scope, ("global", "layer"))
        check_choice(method, "granularity", self.granularity, ("element", "row"))
        if self.granularity == "row" and self.scope == "global":
            raise ConfigError(f"{method}: granularity=row needs scope=layer (rows of different layers differ in size)")


@dataclass(frozen=True)
class StructuredPruneConfig:
    """Remove FFN neurons, attention heads and experts (transformers) or conv channels (CNNs).

    The model gets smaller and cheaper: the kept rows and columns are sliced into thinner layers.
    Grouped-query attention loses whole key / value groups (a fraction that would split one is
    refused); a gated FFN loses the same neurons of gate and up; a mixture of experts loses
    ``experts`` of its experts per layer (router and top-k follow) and ``amount`` of every expert's
    neurons. Importance is the L1 or L2 norm of the weights that a neuron, head or channel owns, or
    (``taylor``, needs data) the first-order estimate of the loss change if it were removed,
    |Σ w·∂L/∂w| summed over up to ``batches`` batches (see :mod:`steelyard.compression.pruning.taylor`).
    """

    amount: float = option(0.3, "fraction of FFN neurons (transformers) or conv channels (CNNs) removed")
    heads: float = option(0.0, "fraction of attention heads removed in every layer (transformers only)")
    experts: float = option(0.0, "fraction of the experts removed in every mixture-of-experts layer")
    importance: Literal["l1", "l2", "taylor"] = option(
        "l1", "L1 / L2 norm of the owned weights, or taylor: |sum of w * dL/dw| on data (labels or pseudo-labels)"
    )
    round_to: int = option(8, "keep a multiple of this many neurons / channels (1: off)")
    batches: int = option(16, "at most this many data batches for importance=taylor")

    def __post_init__(self) -> None:
        method = "prune:structured"
        check_fraction(method, "amount", self.amount, allow_zero=True)
        check_fraction(method, "heads", self.heads, allow_zero=True)
        check_fraction(method, "experts", self.experts, allow_zero=True)
        if self.amount == 0 and self.heads == 0 and self.experts == 0:
            raise ConfigError(f"{method}: amount must be in (0, 1) (or set heads or experts > 0 to prune only those)")
        check_choice(method, "importance", self.importance, ("l1", "l2", "taylor"))
        check_positive_int(method, "round_to", self.round_to)
        check_positive_int(method, "batches", self.batches)


@dataclass(frozen=True)
class LayerPruneConfig:
    """Drop whole transformer layers (depth pruning)."""

    amount: float = option(0.5, "fraction of the layers removed")
    strategy: Literal["spread", "drop-last"] = option(
        "spread", "keep evenly spaced layers (every k-th), or keep the first ones"
    )

    def __post_init__(self) -> None:
        check_fraction("prune:layers", "amount", self.amount)
        check_choice("prune:layers", "strategy", self.strategy, ("spread", "drop-last"))


@dataclass(frozen=True)
class WandaConfig:
    """Wanda: zero the weights with the smallest |W|·‖X‖ in each output row (calibrated; sparse, not faster)."""

    amount: float = option(0.5, "fraction of each row's weights set to zero (pattern=unstructured)")
    pattern: Literal["unstructured", "2:4"] = option(
        "unstructured", "any weights of a row, or 2 of every 4 consecutive inputs (semi-structured)"
    )
    batches: int = option(8, "at most this many calibration batches")
    include_head: bool = option(False, "also prune the output head")

    def __post_init__(self) -> None:
        check_fraction("prune:wanda", "amount", self.amount)
        check_choice("prune:wanda", "pattern", self.pattern, ("unstructured", "2:4"))
        check_positive_int("prune:wanda", "batches", self.batches)


@dataclass(frozen=True)
class AngularLayerConfig:
    """Drop the blocks that change their input least (angular distance of input and output, calibrated)."""

    amount: float = option(0.25, "fraction of the blocks removed")
    batches: int = option(8, "at most this many calibration batches")

    def __post_init__(self) -> None:
        check_fraction("prune:layers-angular", "amount", self.amount)
        check_positive_int("prune:layers-angular", "batches", self.batches)
