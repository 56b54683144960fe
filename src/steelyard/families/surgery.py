"""Model surgery: drop layers, cut heads, FFN neurons and experts, and keep the config true.

Every cut is described the same way: a *unit* (a head group, an FFN neuron, an expert, one
expert's neuron) owns some indices along one dimension of some tensors (:class:`Share`). The same
description gives the magnitude importance (the L1 / L2 norm of the owned weights), the Taylor
importance (Σ w·∂L/∂w over them, :mod:`steelyard.compression.pruning.taylor`) and the cut itself
(keep the owned indices of the kept units, in order), so pruning, scoring and the family tables
(:mod:`steelyard.families.units`) cannot disagree about who owns what.

* heads: grouped-query attention is cut in whole key / value groups (a kv head and the
  ``q_heads / kv_heads`` query heads that read it); a count that would split a group is refused.
  GPT-2's fused ``c_attn`` gives each head its rows in the q, k and v thirds. T5's first block owns
  a per-head position bias that every block of the stack adds, so T5 keeps the same heads per stack.
* FFN neurons: a gated FFN loses the same rows of gate and up and the same columns of down.
* experts (transformers 5 stores them as 3-D ``gate_up_proj`` / ``down_proj``): dropping an expert
  removes its slices and its router row, and lowers top-k when fewer experts remain; each expert's
  neurons are cut like a gated FFN (rows ``n`` and ``width + n`` of ``gate_up_proj``).

The config follows the cut wherever it can state the result (:func:`write_config`): uniform FFN
widths, expert counts and top-k always; head counts where the family pins the head size
(``head_dim`` for Llama and ViT, ``d_kv`` for T5). BERT, DistilBERT and GPT-2 derive the head
size from hidden / heads, so their head-pruned models reload through steelyard's own loader,
which replays the module attributes listed in :data:`SURGERY_ATTRS`.

``save_pretrained`` / ``from_pretrained`` round-trip only when the config states the model's
real depth, including per-layer lists (``layer_types`` of models that mix sliding-window and full
attention) and layer indices (Qwen-MoE's ``mlp_only_layers`` and ``decoder_sparse_step``), so
depth pruning and distillation students both fix the config with :func:`keep_config_layers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steelyard.errors import ConfigError
from steelyard.families.blocks import Blocks, find_stacks
from steelyard.families.config_keys import config_number
from steelyard.families.units import (
    AttentionUnits,
    BlockUnits,
    ExpertUnits,
    FfnUnits,
    is_linear_like,
    resolve,
    table_for,
)

#: Config lists with one entry per layer, sliced with the layers.
PER_LAYER_LISTS: tuple[str, ...] = ("layer_types",)
#: Config lists of layer *indices*, renumbered with the layers.
LAYER_INDEX_LISTS: tuple[str, ...] = ("mlp_only_layers",)
#: Module attributes surgery changes beyond ``in_features`` / ``out_features`` (saved with a
#: compressed model and set again when it is rebuilt from an unchanged config).
SURGERY_ATTRS: tuple[str, ...] = ("n_heads", "split_size", "nf", "nx", "inner_dim", "num_experts", "top_k",
                                  "intermediate_dim")


# --- config ------------------------------------------------------------------------------------------


def keep_config_layers(config: Any, count_key: str, kept: list[int], total: int) -> None:
    """Set ``config.<count_key>`` to ``len(kept)`` and keep / renumber the per-layer entries.

    Per-layer lists (:data:`PER_LAYER_LISTS`) keep the ``kept`` entries; index lists
    (:data:`LAYER_INDEX_LISTS`) are renumbered. A ``decoder_sparse_step`` > 1 (every k-th layer is
    MoE) cannot survive an uneven cut, so it becomes step 1 with the dense layers listed in
    ``mlp_only_layers``.
    """
    step = getattr(config, "decoder_sparse_step", None)
    dense: set[int] | None = None
    if isinstance(step, int) and step > 1 and isinstance(getattr(config, "mlp_only_layers", None), list):
        dense = set(config.mlp_only_layers) | {i for i in range(total) if (i + 1) % step != 0}
    setattr(config, count_key, len(kept))
    for list_key in PER_LAYER_LISTS:
        value = getattr(config, list_key, None)
        if isinstance(value, list) and len(value) == total:
            setattr(config, list_key, [value[i] for i in kept])
    for list_key in LAYER_INDEX_LISTS:
        value = getattr(config, list_key, None)
        if isinstance(value, list):
            old = dense if dense is not None and list_key == "mlp_only_layers" else set(value)
            setattr(config, list_key, [new for new, i in enumerate(kept) if i in old])
    if dense is not None:
        config.decoder_sparse_step = 1


# --- depth ---------------------------------------------------------------------------------------------


def drop_layers(model: nn.Module, blocks: Blocks, kept: list[int], config: Any) -> None:
    """Keep only the ``kept`` blocks of ``blocks`` in ``model`` and fix the config's count for them.

    Caches index layers by position, so every ``layer_idx`` is renumbered.
    """
    key = blocks.count_key(config) if config is not None else None
    if key is None:
        raise ConfigError(f"the config of {type(model).__name__} has no layer count for {blocks.path}")
    total = len(blocks)
    new = nn.ModuleList([blocks.layers[i] for i in kept])
    for position, layer in enumerate(new):
        for sub in layer.modules():
            if isinstance(getattr(sub, "layer_idx", None), int):
                sub.layer_idx = position
    parent = model.get_submodule(blocks.parent_path) if blocks.parent_path else model
    setattr(parent, blocks.attr, new)
    keep_config_layers(config, key, kept, total)


# --- who owns what -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """The indices each unit owns along ``dim`` of the tensor ``owner.<name>``.

    ``owned`` is (units, k): row ``u`` lists unit ``u``'s indices. ``expert`` first selects one
    expert of a 3-D expert parameter. Bias shares count for Taylor scores, not for magnitudes
    (the norms are of weights, as in the pruning literature).
    """

    owner: nn.Module
    name: str
    dim: int
    owned: torch.Tensor
    expert: int | None = None
    bias: bool = False

    def tensor(self, grad: bool = False) -> torch.Tensor | None:
        param = getattr(self.owner, self.name)
        t = param.grad if grad else param.detach()
        if t is None:
            return None
        return t[self.expert] if self.expert is not None else t

    def per_unit(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` gathered to (units, k, rest...)."""
        return t.movedim(self.dim, 0)[self.owned]


def _ranges(units: int, size: int, offset: int = 0) -> torch.Tensor:
    return offset + torch.arange(units * size).reshape(units, size)


def _rows(module: nn.Module, owned: torch.Tensor) -> list[Share]:
    """Shares of output rows of a Linear / Conv1D (and its bias)."""
    out_dim = 1 if type(module).__name__ == "Conv1D" else 0
    shares = [Share(module, "weight", out_dim, owned)]
    if getattr(module, "bias", None) is not None:
        shares.append(Share(module, "bias", 0, owned, bias=True))
    return shares


def _cols(module: nn.Module, owned: torch.Tensor) -> list[Share]:
    """Shares of input columns of a Linear / Conv1D."""
    return [Share(module, "weight", 0 if type(module).__name__ == "Conv1D" else 1, owned)]


def _width(module: nn.Module, outputs: bool = True) -> int:
    weight = module.weight
    conv1d = type(module).__name__ == "Conv1D"
    return int(weight.shape[(1 if conv1d else 0) if outputs else (0 if conv1d else 1)])


def attention_shape(table: AttentionUnits, block: nn.Module) -> tuple[int, int, int]:
    """(query heads, key / value heads, head size) of one attention module, from its widths."""
    size = int(getattr(resolve(block, table.module), table.head_size_attr))
    if table.fused_qkv:
        heads = _width(resolve(block, table.fused_qkv)) // 3 // size
        return heads, heads, size
    return _width(resolve(block, table.query)) // size, _width(resolve(block, table.key)) // size, size


@dataclass
class UnitSet:
    """The units of one kind in one block: what owns them and how many there are."""

    kind: str  # "heads", "ffn", "shared-ffn", "experts" or "expert-ffn"
    block: nn.Module
    table: Any
    shares: list[Share]
    count: int
    #: Query heads per unit (a unit of "heads" is one key / value group).
    group: int = 1
    expert: int | None = None
    #: Where the scores of this set are kept: (block position, kind, table, expert).
    key: tuple[Any, ...] = field(default=())


def head_set(table: AttentionUnits, block: nn.Module) -> UnitSet:
    """Heads of one attention module, in key / value groups (one head each without GQA)."""
    q_heads, kv_heads, size = attention_shape(table, block)
    if kv_heads < 1 or q_heads % kv_heads:
        raise ConfigError(f"{table.module}: {q_heads} query heads do not share {kv_heads} key / value heads evenly")
    group = q_heads // kv_heads
    q_rows, kv_rows = _ranges(kv_heads, group * size), _ranges(kv_heads, size)
    out = resolve(block, table.output)
    if table.fused_qkv:
        width = q_heads * size
        owned = torch.cat([q_rows, q_rows + width, q_rows + 2 * width], dim=1)
        shares = _rows(resolve(block, table.fused_qkv), owned)
    else:
        shares = (_rows(resolve(block, table.query), q_rows) + _rows(resolve(block, table.key), kv_rows)
                  + _rows(resolve(block, table.value), kv_rows))
    shares += _cols(out, q_rows)
    if table.relative_bias:
        try:
            bias = resolve(block, table.relative_bias)
        except AttributeError:
            bias = None
        if isinstance(bias, nn.Embedding):
            shares.append(Share(bias, "weight", 1, _ranges(kv_heads, group), bias=True))
    return UnitSet("heads", block, table, shares, kv_heads, group)


def ffn_set(table: FfnUnits, block: nn.Module, kind: str = "ffn") -> UnitSet:
    """Neurons of a dense (or gated) FFN: rows of every input layer, columns of the output layer."""
    first = resolve(block, table.inputs[0])
    width = _width(first)
    owned = _ranges(width, 1)
    shares = [s for path in table.inputs for s in _rows(resolve(block, path), owned)]
    return UnitSet(kind, block, table, shares + _cols(resolve(block, table.output), owned), width)


def expert_count(table: ExpertUnits, block: nn.Module) -> int:
    return int(getattr(resolve(block, table.experts), table.gate_up).shape[0])


def expert_set(table: ExpertUnits, block: nn.Module) -> UnitSet:
    """Whole experts: their slices of the 3-D parameters and their router rows."""
    experts, router = resolve(block, table.experts), resolve(block, table.router)
    count = expert_count(table, block)
    owned = _ranges(count, 1)
    shares = [Share(experts, table.gate_up, 0, owned), Share(experts, table.down, 0, owned),
              Share(router, "weight", 0, owned)]
    if isinstance(getattr(router, "bias", None), nn.Parameter):
        shares.append(Share(router, "bias", 0, owned, bias=True))
    return UnitSet("experts", block, table, shares, count)


def expert_ffn_set(table: ExpertUnits, block: nn.Module, expert: int) -> UnitSet:
    """Neurons of one expert: rows ``n`` and ``width + n`` of its ``gate_up``, column ``n`` of its ``down``."""
    experts = resolve(block, table.experts)
    width = int(getattr(experts, table.down).shape[2])
    owned = _ranges(width, 1)
    shares = [Share(experts, table.gate_up, 0, torch.cat([owned, owned + width], dim=1), expert),
              Share(experts, table.down, 1, owned, expert)]
    return UnitSet("expert-ffn", block, table, shares, width, expert=expert)


# --- stacks and their tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitStack:
    """One stack of blocks with the table of its units."""

    blocks: Blocks
    units: BlockUnits

    @property
    def layers(self) -> list[nn.Module]:
        return list(self.blocks.layers)


def unit_stacks(model: nn.Module) -> list[UnitStack]:
    """Every stack whose blocks a units table describes (an encoder-decoder's two; one elsewhere)."""
    out = []
    for stack in find_stacks(model):
        layers = list(stack.layers)
        table = table_for(layers, (stack.family.units,) if stack.family.units else ())
        if table is not None:
            out.append(UnitStack(stack, table))
    return out


def unit_sets(stacks: list[UnitStack], kinds: Iterable[str]) -> list[UnitSet]:
    """The unit sets of ``kinds`` in every block of ``stacks``, each keyed by its position."""
    wanted = set(kinds)
    sets: list[UnitSet] = []
    position = 0
    for stack in stacks:
        for block in stack.layers:
            found: list[UnitSet] = []
            if "heads" in wanted:
                found += [head_set(a, block) for a in stack.units.present_attentions(block)]
            if "ffn" in wanted and stack.units.ffn_present(block):
                found.append(ffn_set(stack.units.ffn, block))  # type: ignore[arg-type]
            experts = stack.units.experts if stack.units.experts_present(block) else None
            if experts is not None:
                if "experts" in wanted:
                    found.append(expert_set(experts, block))
                if "ffn" in wanted:
                    found += [expert_ffn_set(experts, block, e) for e in range(expert_count(experts, block))]
                    if experts.shared is not None:
                        found.append(ffn_set(experts.shared, block, "shared-ffn"))
            for s in found:
                s.key = (position, s.kind, s.table, s.expert)
            sets += found
            position += 1
    return sets


# --- scores ----------------------------------------------------------------------------------------------


def magnitude(units: UnitSet, importance: str = "l1") -> torch.Tensor:
    """Per unit: the L1 (or L2) norm of the weights it owns, summed over the tensors."""
    score = torch.zeros(units.count)
    for share in units.shares:
        if share.bias:
            continue
        t = share.per_unit(share.tensor().float())  # type: ignore[union-attr]
        flat = t.reshape(units.count, -1)
        score += flat.abs().sum(1) if importance == "l1" else flat.pow(2).sum(1).sqrt()
    return score


def taylor_contribution(units: UnitSet) -> torch.Tensor:
    """Per unit: Σ w·∂L/∂w over everything it owns (weights and biases), for one backward pass."""
    total = torch.zeros(units.count)
    for share in units.shares:
        grad = share.tensor(grad=True)
        if grad is None:
            continue
        product = share.per_unit((share.tensor() * grad).float())  # type: ignore[operator]
        total += product.reshape(units.count, -1).sum(1).cpu()
    return total


def owned_params(sets: Iterable[UnitSet]) -> list[nn.Parameter]:
    """The parameters the sets' units own (each once)."""
    params: dict[int, nn.Parameter] = {}
    for s in sets:
        for share in s.shares:
            p = getattr(share.owner, share.name)
            params.setdefault(id(p), p)
    return list(params.values())


# --- cuts ------------------------------------------------------------------------------------------------


def _refresh(module: nn.Module) -> None:
    """Size attributes of a module whose weight was cut."""
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = int(weight.shape[0]), int(weight.shape[1])  # type: ignore[union-attr]
    elif isinstance(module, nn.Embedding):
        module.num_embeddings, module.embedding_dim = int(weight.shape[0]), int(weight.shape[1])  # type: ignore[union-attr]
    elif is_linear_like(module):
        module.nx, module.nf = int(weight.shape[0]), int(weight.shape[1])  # type: ignore[union-attr]


def _kept_indices(share: Share, kept: torch.Tensor) -> torch.Tensor:
    return torch.sort(share.owned[kept].reshape(-1)).values


def _apply(cuts: list[tuple[Share, torch.Tensor]]) -> None:
    """Replace every cut tensor by the kept indices of its kept units (expert slices stacked again)."""
    by_tensor: dict[tuple[int, str], list[tuple[Share, torch.Tensor]]] = {}
    for share, kept in cuts:
        by_tensor.setdefault((id(share.owner), share.name), []).append((share, kept))
    for group in by_tensor.values():
        share = group[0][0]
        old = getattr(share.owner, share.name)
        if share.expert is None:
            new = old.detach().index_select(share.dim, _kept_indices(share, group[0][1]).to(old.device))
        else:
            pieces = {s.expert: old.detach()[s.expert].index_select(s.dim, _kept_indices(s, k).to(old.device))
                      for s, k in group}
            if sorted(pieces) != list(range(old.shape[0])):
                raise ConfigError(f"{share.name}: every expert needs its kept neurons")
            new = torch.stack([pieces[e] for e in range(old.shape[0])])
        setattr(share.owner, share.name, nn.Parameter(new.clone(), requires_grad=old.requires_grad))
        _refresh(share.owner)


def _set_attrs(module: nn.Module, names: Iterable[str], value: int) -> None:
    for name in names:
        if hasattr(module, name):
            setattr(module, name, value)


def cut(selection: list[tuple[UnitSet, torch.Tensor]]) -> None:
    """Keep the given units (sorted index tensors) of each set and fix the modules' size attributes."""
    _apply([(share, kept) for units, kept in selection for share in units.shares])
    for units, kept in selection:
        block, n = units.block, int(kept.numel())
        if units.kind == "heads":
            table: AttentionUnits = units.table
            size = int(getattr(resolve(block, table.module), table.head_size_attr))
            attention = resolve(block, table.module)
            _set_attrs(attention, table.count_attrs, n * units.group)
            _set_attrs(attention, table.width_attrs, n * units.group * size)
        elif units.kind in ("ffn", "shared-ffn") and units.table.width_module:
            _set_attrs(resolve(block, units.table.width_module), units.table.width_attrs, n)
        elif units.kind == "experts":
            experts_table: ExpertUnits = units.table
            experts, router = resolve(block, experts_table.experts), resolve(block, experts_table.router)
            for module in (experts, router):
                _set_attrs(module, ("num_experts",), n)
            for module in (router, resolve(block, experts_table.module)):
                if isinstance(getattr(module, "top_k", None), int):
                    module.top_k = min(module.top_k, n)
        elif units.kind == "expert-ffn":
            _set_attrs(resolve(block, units.table.experts), ("intermediate_dim",), n)


def top_units(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` highest-scoring units, in their original order."""
    return torch.sort(torch.topk(scores, keep).indices).values


def heads_to_keep(q_heads: int, group: int, fraction: float) -> int:
    """Key / value groups kept when ``fraction`` of ``q_heads`` query heads go; refuses to split a group."""
    keep = max(1, q_heads - round(q_heads * fraction))
    if keep % group:
        options = ", ".join(f"{1 - k * group / q_heads:g}" for k in range(1, q_heads // group))
        raise ConfigError(
            f"removing {fraction:g} of {q_heads} attention heads keeps {keep}, but each key / value head serves "
            f"{group} query heads (grouped-query attention): heads are removed in whole groups of {group}"
            + (f"; use heads = {options}" if options else "; this model has a single group")
        )
    return keep // group


# --- the config ------------------------------------------------------------------------------------------


def _uniform(values: Iterable[int]) -> int | None:
    found = set(values)
    return found.pop() if len(found) == 1 else None


def write_config(config: Any, stacks: list[UnitStack]) -> list[str]:
    """State the cut widths in ``config`` where they are uniform and the family's config can say them.

    Returns what could not be stated (one sentence each); a model cut that way reloads through
    steelyard's loader only.
    """
    if config is None:
        return ["the model has no config to state the new widths"]
    missing: list[str] = []
    sets = unit_sets(stacks, ("heads", "ffn", "experts"))
    tables = {s.units.name: s.units for s in stacks}
    for units in tables.values():
        heads = [s for s in sets if s.kind == "heads" and any(s.table is a for a in units.attentions)]
        if heads:
            shapes = {attention_shape(s.table, s.block) for s in heads}
            first = next(iter(shapes))
            original = getattr(config, units.heads_key, None) if units.heads_key else config_number(config, "heads")
            if len(shapes) == 1 and first[0] != original:
                if units.heads_key is None:
                    missing.append(f"a {units.name} config cannot state {first[0]} heads of size {first[2]} "
                                   "(its head size is hidden / heads)")
                else:
                    if units.head_dim_key:
                        setattr(config, units.head_dim_key, first[2])
                    setattr(config, units.heads_key, first[0])
                    if units.kv_heads_key and getattr(config, units.kv_heads_key, None) is not None:
                        setattr(config, units.kv_heads_key, first[1])
            elif len(shapes) > 1:
                missing.append("head counts differ between layers")
        for kind, table in (("ffn", units.ffn), ("shared-ffn", units.experts.shared if units.experts else None)):
            width = _uniform(s.count for s in sets if s.kind == kind and s.table is table)
            if table is not None and table.config_key and width is not None:
                setattr(config, table.config_key, width)
        if units.experts is not None:
            table = units.experts
            count = _uniform(s.count for s in sets if s.kind == "experts" and s.table is table)
            width = _uniform(s.count for s in sets if s.kind == "expert-ffn" and s.table is table)
            if count is not None:
                setattr(config, table.count_key, count)
                top_k = getattr(config, table.top_k_key, None)
                if isinstance(top_k, int):
                    setattr(config, table.top_k_key, min(top_k, count))
            if width is not None:
                setattr(config, table.ffn_key, width)
    return missing


def sync_model_counts(module: nn.Module, config: Any, stacks: list[UnitStack]) -> None:
    """Copy the new expert count and top-k onto the model objects that read them from the config at init.

    transformers' MoE models keep ``num_experts`` / ``num_experts_per_tok`` on the top-level model
    (for the router's auxiliary loss); left stale, the cut model would differ from the one its config
    rebuilds.
    """
    for units in {s.units.name: s.units for s in stacks}.values():
        if units.experts is None or config is None:
            continue
        count, top_k = getattr(config, units.experts.count_key, None), getattr(config, units.experts.top_k_key, None)
        for owner in (module, getattr(module, "model", None)):
            if owner is None:
                continue
            if isinstance(count, int) and isinstance(getattr(owner, "num_experts", None), int):
                owner.num_experts = count
            if isinstance(top_k, int) and isinstance(getattr(owner, "num_experts_per_tok", None), int):
                owner.num_experts_per_tok = top_k


# --- what a model offers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimensions:
    """What surgery can shrink in a model (None where it cannot): for search spaces and messages."""

    #: Blocks of the first stack, when depth pruning applies (a count key and at least two).
    layers: int | None = None
    #: Query heads per block and query heads per key / value head (1 without GQA).
    heads: int | None = None
    head_group: int = 1
    #: FFN width (dense, or one expert's).
    ffn: int | None = None
    #: Experts per MoE block and experts used per token.
    experts: int | None = None
    top_k: int | None = None

    def head_fractions(self, candidates: Iterable[float]) -> list[float]:
        """The fractions of ``candidates`` that remove whole key / value groups (0 always)."""
        if self.heads is None:
            return []
        out = []
        for f in candidates:
            keep = max(1, self.heads - round(self.heads * f))
            if f == 0 or (keep % self.head_group == 0 and keep < self.heads):
                out.append(f)
        return out


def dimensions(model: nn.Module, config: Any = None) -> Dimensions:
    """The shrinkable dimensions of ``model`` (its first stack; see :class:`Dimensions`)."""
    from steelyard.families.registry import model_config

    config = config if config is not None else model_config(model)
    stacks = find_stacks(model)
    layers = None
    if stacks and len(stacks[0]) > 1 and config is not None and stacks[0].count_key(config) is not None:
        layers = len(stacks[0])
    found = unit_stacks(model)
    if not found:
        return Dimensions(layers=layers)
    stack = found[0]
    block = stack.layers[0]
    q_heads, kv_heads, _ = attention_shape(stack.units.attention(block), block)
    ffn = experts = top_k = None
    if stack.units.ffn_present(block):
        ffn = ffn_set(stack.units.ffn, block).count  # type: ignore[arg-type]
    moe = next((b for b in stack.layers if stack.units.experts_present(b)), None)
    if moe is not None and stack.units.experts is not None:
        experts = expert_count(stack.units.experts, moe)
        ffn = ffn or expert_ffn_set(stack.units.experts, moe, 0).count
        k = getattr(config, stack.units.experts.top_k_key, None)
        top_k = k if isinstance(k, int) else None
    return Dimensions(layers, q_heads if q_heads > 1 else None, q_heads // max(1, kv_heads), ffn, experts, top_k)
