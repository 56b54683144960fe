"""Where the prunable units of one transformer block live: attention heads, FFN neurons, experts.

A :class:`BlockUnits` table names, as dotted paths inside one block (``-1`` indexes the last entry
of a ``ModuleList``, for T5 whose FFN is ``layer[1]`` in the encoder and ``layer[2]`` in the
decoder), the modules that own each kind of unit, the module attributes that record their counts,
and the config keys that state them. :mod:`steelyard.families.surgery` reads and cuts blocks only
through these tables, so a family with other module names is one new table here, not a new pruning
module. :data:`KNOWN_UNITS` is tried in order on a stack's first block (:meth:`BlockUnits.matches`).

* :class:`AttentionUnits` — separate query / key / value projections (BERT's ``query``,
  DistilBERT's ``q_lin``, Llama's and ViT's ``q_proj``, T5's ``q``) or one fused projection
  (GPT-2's ``Conv1D`` ``c_attn``, q | k | v along its outputs), and the output projection. Grouped
  query attention is read from the widths: ``k_proj`` narrower than ``q_proj`` means each key /
  value head serves ``q_heads / kv_heads`` query heads.
* :class:`FfnUnits` — the layers whose output rows are the neurons (``fc1``; gate *and* up of a
  gated FFN) and the layer whose input columns are (``fc2`` / ``down``).
* :class:`ExpertUnits` — a mixture-of-experts block with its experts stored as 3-D parameters
  (transformers 5: ``gate_up_proj`` of shape (experts, 2 · width, hidden) and ``down_proj`` of
  shape (experts, hidden, width)), its router (one weight row per expert) and an optional shared
  expert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


def resolve(block: nn.Module, path: str) -> Any:
    """The module (or attribute) at dotted ``path`` under ``block``; AttributeError when absent.

    Numeric parts index ``ModuleList``\\ s, negative ones from the end.
    """
    node: Any = block
    for part in path.split("."):
        if part.lstrip("-").isdigit() and isinstance(node, (nn.ModuleList, nn.Sequential)):
            index = int(part)
            if not -len(node) <= index < len(node):
                raise AttributeError(f"{path}: index {index} out of range")
            node = node[index]
        else:
            node = getattr(node, part)
    return node


def has(block: nn.Module, path: str) -> bool:
    try:
        resolve(block, path)
    except AttributeError:
        return False
    return True


def is_linear_like(module: Any) -> bool:
    """``nn.Linear`` or transformers' ``Conv1D`` (GPT-2: weight stored as (in, out), ``nf`` outputs)."""
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Module) and type(module).__name__ == "Conv1D"
                                              and hasattr(module, "nf"))


@dataclass(frozen=True)
class AttentionUnits:
    """One attention module of a block and the layers that own its heads."""

    #: The attention module, which holds the head size and the count attributes below.
    module: str
    #: The output projection: a head owns ``head_size`` of its input columns.
    output: str
    query: str = ""
    key: str = ""
    value: str = ""
    #: One projection computing q | k | v (each ``heads · head_size`` wide) instead of three.
    fused_qkv: str = ""
    #: Attribute of ``module`` holding the head size.
    head_size_attr: str = "head_dim"
    #: Attributes of ``module`` set to the new query-head count after a cut.
    count_attrs: tuple[str, ...] = ()
    #: Attributes of ``module`` set to the new ``heads · head_size`` after a cut.
    width_attrs: tuple[str, ...] = ()
    #: An ``nn.Embedding(buckets, heads)`` of per-head position biases (T5's first block), sliced by column.
    relative_bias: str = ""
    #: The module is absent from some blocks of the stack (T5's cross-attention in encoder blocks).
    optional: bool = False

    def projections(self) -> tuple[str, ...]:
        return (self.fused_qkv,) if self.fused_qkv else (self.query, self.key, self.value)

    def matches(self, block: nn.Module) -> bool:
        if not has(block, self.module):
            return self.optional
        attention = resolve(block, self.module)
        return hasattr(attention, self.head_size_attr) and all(
            has(block, p) and is_linear_like(resolve(block, p)) for p in (*self.projections(), self.output))


@dataclass(frozen=True)
class FfnUnits:
    """A dense FFN: ``inputs`` produce the neurons (gate and up together), ``output`` reads them."""

    inputs: tuple[str, ...]
    output: str
    #: The config key stating the width (None: the config cannot say).
    config_key: str | None = None
    #: A module (path) and its attributes set to the new width (``Qwen2MoeMLP.intermediate_size``).
    width_module: str = ""
    width_attrs: tuple[str, ...] = ()
    #: Absent from some blocks (the dense FFN of a model whose other layers are MoE).
    optional: bool = False

    def present(self, block: nn.Module) -> bool:
        return all(has(block, p) and is_linear_like(resolve(block, p)) for p in (*self.inputs, self.output))

    def matches(self, block: nn.Module) -> bool:
        return self.optional or self.present(block)


@dataclass(frozen=True)
class ExpertUnits:
    """A mixture-of-experts FFN whose experts are 3-D parameters (transformers 5's fused layout)."""

    #: The sparse block (holds ``top_k`` on some models).
    module: str
    #: The router: a module whose ``weight`` has one row per expert.
    router: str
    #: The experts: ``gate_up`` (experts, 2 · width, hidden) and ``down`` (experts, hidden, width) parameters.
    experts: str
    gate_up: str = "gate_up_proj"
    down: str = "down_proj"
    #: Config keys of the expert count, the experts used per token and one expert's width.
    count_key: str = "num_local_experts"
    top_k_key: str = "num_experts_per_tok"
    ffn_key: str = "intermediate_size"
    #: An always-on shared expert (Qwen-MoE), pruned like a dense FFN.
    shared: FfnUnits | None = None

    def present(self, block: nn.Module) -> bool:
        if not (has(block, self.router) and has(block, self.experts)):
            return False
        if self.shared is not None and not self.shared.present(block):
            return False
        experts = resolve(block, self.experts)
        return all(isinstance(getattr(experts, n, None), nn.Parameter) and getattr(experts, n).dim() == 3
                   for n in (self.gate_up, self.down))


@dataclass(frozen=True)
class BlockUnits:
    """What is prunable in one block of a family, and where the config states it."""

    name: str
    attentions: tuple[AttentionUnits, ...]
    ffn: FfnUnits | None = None
    experts: ExpertUnits | None = None
    #: Config key of the query-head count (None: the config cannot state a pruned head count, e.g.
    #: BERT's head size is hidden / heads); ``kv_heads_key`` of the key / value heads (GQA);
    #: ``head_dim_key`` pins the head size so the count can change (set when missing).
    heads_key: str | None = None
    kv_heads_key: str | None = None
    head_dim_key: str | None = None
    #: Every block of a stack keeps the *same* heads: T5's first block computes one position bias
    #: per head that all later blocks add to their scores.
    same_heads_per_stack: bool = False

    def attention(self, block: nn.Module) -> AttentionUnits:
        """The block's first (self-)attention table."""
        return next(a for a in self.attentions if has(block, a.module))

    def present_attentions(self, block: nn.Module) -> list[AttentionUnits]:
        return [a for a in self.attentions if has(block, a.module)]

    def head_size(self, block: nn.Module) -> int:
        table = self.attention(block)
        return int(getattr(resolve(block, table.module), table.head_size_attr))

    def head_count(self, block: nn.Module) -> int:
        """Query heads the block's self-attention computes now (from the query width)."""
        from steelyard.families.surgery import attention_shape

        return attention_shape(self.attention(block), block)[0]

    def ffn_present(self, block: nn.Module) -> bool:
        return self.ffn is not None and self.ffn.present(block)

    def experts_present(self, block: nn.Module) -> bool:
        return self.experts is not None and self.experts.present(block)

    def matches(self, block: nn.Module) -> bool:
        """Whether ``block`` has this table's attention and one of its FFN kinds."""
        if not self.attentions or not all(a.matches(block) for a in self.attentions):
            return False
        if not any(has(block, a.module) for a in self.attentions):
            return False
        return self.ffn_present(block) or self.experts_present(block)


def _llama_like(name: str, experts: ExpertUnits | None = None, dense_optional: bool = False) -> BlockUnits:
    return BlockUnits(
        name,
        (AttentionUnits("self_attn", "self_attn.o_proj", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),),
        FfnUnits(("mlp.gate_proj", "mlp.up_proj"), "mlp.down_proj", "intermediate_size", "mlp",
                 ("intermediate_size",), optional=dense_optional),
        experts,
        heads_key="num_attention_heads", kv_heads_key="num_key_value_heads", head_dim_key="head_dim",
    )


#: BERT, RoBERTa, XLM-R, ELECTRA, CamemBERT... (``BertLayer`` and its copies in transformers).
BERT_UNITS = BlockUnits(
    "bert",
    (AttentionUnits("attention.self", "attention.output.dense", "attention.self.query", "attention.self.key",
                    "attention.self.value", head_size_attr="attention_head_size",
                    count_attrs=("num_attention_heads",), width_attrs=("all_head_size",)),),
    FfnUnits(("intermediate.dense",), "output.dense", "intermediate_size"),
)
#: DistilBERT: ``attention.q_lin`` ... ``out_lin``, ``ffn.lin1`` / ``ffn.lin2`` (width ``hidden_dim``).
DISTILBERT_UNITS = BlockUnits(
    "distilbert",
    (AttentionUnits("attention", "attention.out_lin", "attention.q_lin", "attention.k_lin", "attention.v_lin",
                    head_size_attr="attention_head_size", count_attrs=("n_heads",)),),
    FfnUnits(("ffn.lin1",), "ffn.lin2", "hidden_dim"),
)
#: GPT-2: one ``Conv1D`` ``attn.c_attn`` computes q | k | v; ``mlp.c_fc`` / ``mlp.c_proj`` (width ``n_inner``).
GPT2_UNITS = BlockUnits(
    "gpt2",
    (AttentionUnits("attn", "attn.c_proj", fused_qkv="attn.c_attn", count_attrs=("num_heads",),
                    width_attrs=("split_size",)),),
    FfnUnits(("mlp.c_fc",), "mlp.c_proj", "n_inner"),
)
#: Llama, Mistral, Qwen2, Gemma, Phi-3 (split projections), OLMo...: GQA, gated FFN.
LLAMA_UNITS = _llama_like("llama")
#: Mixtral: every FFN is a routed MoE of fused experts (width ``intermediate_size``).
MIXTRAL_UNITS = _llama_like("mixtral", ExpertUnits("mlp", "mlp.gate", "mlp.experts"))
#: Qwen2-MoE / Qwen3-MoE: routed experts (``moe_intermediate_size``), a shared expert, and dense FFNs
#: in the layers ``mlp_only_layers`` / ``decoder_sparse_step`` leave dense.
QWEN_MOE_UNITS = _llama_like(
    "qwen-moe",
    ExpertUnits("mlp", "mlp.gate", "mlp.experts", count_key="num_experts", ffn_key="moe_intermediate_size",
                shared=FfnUnits(("mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj"),
                                "mlp.shared_expert.down_proj", "shared_expert_intermediate_size",
                                "mlp.shared_expert", ("intermediate_size",))),
    dense_optional=True,
)
#: ViT, DeiT (transformers 5: ``attention.q_proj`` ... ``o_proj``, ``mlp.fc1`` / ``mlp.fc2``). The
#: attention reads ``config.head_dim`` when present, so a pinned head size lets the count change.
VIT_UNITS = BlockUnits(
    "vit",
    (AttentionUnits("attention", "attention.o_proj", "attention.q_proj", "attention.k_proj", "attention.v_proj",
                    count_attrs=("num_attention_heads",)),),
    FfnUnits(("mlp.fc1",), "mlp.fc2", "intermediate_size"),
    heads_key="num_attention_heads", head_dim_key="head_dim",
)
_T5_ATTENTIONS = (
    AttentionUnits("layer.0.SelfAttention", "layer.0.SelfAttention.o", "layer.0.SelfAttention.q",
                   "layer.0.SelfAttention.k", "layer.0.SelfAttention.v", head_size_attr="key_value_proj_dim",
                   count_attrs=("n_heads",), width_attrs=("inner_dim",),
                   relative_bias="layer.0.SelfAttention.relative_attention_bias"),
    AttentionUnits("layer.1.EncDecAttention", "layer.1.EncDecAttention.o", "layer.1.EncDecAttention.q",
                   "layer.1.EncDecAttention.k", "layer.1.EncDecAttention.v", head_size_attr="key_value_proj_dim",
                   count_attrs=("n_heads",), width_attrs=("inner_dim",), optional=True),
)
#: T5 / mT5 (``wi`` / ``wo``) and its gated variant (``wi_0`` + ``wi_1``); the FFN is the block's last layer.
T5_UNITS = BlockUnits("t5", _T5_ATTENTIONS, FfnUnits(("layer.-1.DenseReluDense.wi",), "layer.-1.DenseReluDense.wo",
                                                      "d_ff"),
                      heads_key="num_heads", head_dim_key="d_kv", same_heads_per_stack=True)
T5_GATED_UNITS = BlockUnits(
    "t5-gated", _T5_ATTENTIONS,
    FfnUnits(("layer.-1.DenseReluDense.wi_0", "layer.-1.DenseReluDense.wi_1"), "layer.-1.DenseReluDense.wo", "d_ff"),
    heads_key="num_heads", head_dim_key="d_kv", same_heads_per_stack=True,
)

def table_for(layers: list[nn.Module], tables: tuple[BlockUnits, ...] = ()) -> BlockUnits | None:
    """The first table (``tables``, then :data:`KNOWN_UNITS`) that every block of a stack matches;
    a table with experts also needs one block that has them (else a dense Llama would pass as MoE)."""
    for table in (*tables, *KNOWN_UNITS):
        if all(table.matches(b) for b in layers) and (
                table.experts is None or any(table.experts_present(b) for b in layers)):
            return table
    return None


def _bart_attention(module: str, optional: bool = False) -> AttentionUnits:
    return AttentionUnits(module, f"{module}.out_proj", f"{module}.q_proj", f"{module}.k_proj", f"{module}.v_proj",
                          count_attrs=("num_heads",), optional=optional)


#: BART, mBART, Marian, Pegasus, M2M-100 and their decoder stacks (self- and cross-attention ``encoder_attn``):
#: each stack has its own FFN width key; the head size is d_model / heads, so pruned head counts are not stated.
BART_DECODER_UNITS = BlockUnits("bart-decoder", (_bart_attention("self_attn"), _bart_attention("encoder_attn")),
                                FfnUnits(("fc1",), "fc2", "decoder_ffn_dim"))
BART_ENCODER_UNITS = BlockUnits("bart-encoder", (_bart_attention("self_attn"),), FfnUnits(("fc1",), "fc2",
                                                                                          "encoder_ffn_dim"))

#: Every table, tried in order on a stack's blocks (the first that matches is used).
KNOWN_UNITS: tuple[BlockUnits, ...] = (BERT_UNITS, DISTILBERT_UNITS, GPT2_UNITS, QWEN_MOE_UNITS, MIXTRAL_UNITS,
                                       LLAMA_UNITS, VIT_UNITS, T5_GATED_UNITS, T5_UNITS, BART_DECODER_UNITS,
                                       BART_ENCODER_UNITS)
