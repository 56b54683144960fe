"""Where the prunable units of one transformer block live: attention heads and FFN neurons.

A :class:`BlockUnits` names, as dotted paths inside one block, the attention projections (a head
owns ``head_size`` rows of query / key / value and as many columns of the attention output) and the
FFN pair (a neuron owns one row of the first layer and one column of the second). Structured and
Taylor pruning read and replace layers only through it, so a family with other module names is one
new table, not a new pruning module.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class BlockUnits:
    """Dotted paths, relative to one block, of the modules that own heads and FFN neurons."""

    #: The self-attention module, which holds the head size and count attributes below.
    attention: str
    query: str
    key: str
    value: str
    attention_output: str
    ffn_in: str
    ffn_out: str
    head_size_attr: str = "attention_head_size"
    head_count_attr: str = "num_attention_heads"
    all_head_size_attr: str = "all_head_size"

    def part(self, block: nn.Module, name: str) -> nn.Module:
        """The module at field ``name`` (``"query"``, ``"ffn_in"``...) of ``block``."""
        return block.get_submodule(getattr(self, name))

    def linear(self, block: nn.Module, name: str) -> nn.Linear:
        """The ``nn.Linear`` at field ``name`` of ``block`` (the layers whose rows and columns are sliced)."""
        module = self.part(block, name)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{getattr(self, name)} is a {type(module).__name__}, not an nn.Linear")
        return module

    def replace(self, block: nn.Module, name: str, new: nn.Module) -> None:
        """Put ``new`` where field ``name`` of ``block`` points."""
        parent, _, leaf = getattr(self, name).rpartition(".")
        setattr(block.get_submodule(parent) if parent else block, leaf, new)

    def head_size(self, block: nn.Module) -> int:
        return int(getattr(self.part(block, "attention"), self.head_size_attr))

    def head_count(self, block: nn.Module) -> int:
        """Heads the block computes now (from the query width, which pruning keeps exact)."""
        return self.linear(block, "query").out_features // self.head_size(block)

    def set_head_count(self, block: nn.Module, heads: int) -> None:
        """Record a new head count on the attention module (after its projections were sliced)."""
        attention = self.part(block, "attention")
        setattr(attention, self.head_count_attr, heads)
        setattr(attention, self.all_head_size_attr, heads * self.head_size(block))

    def matches(self, block: nn.Module) -> bool:
        """Whether ``block`` has every module this table names (Linear layers where weights are sliced)."""
        try:
            attention = self.part(block, "attention")
            linears = [self.part(block, n) for n in ("query", "key", "value", "attention_output", "ffn_in", "ffn_out")]
        except AttributeError:
            return False
        return hasattr(attention, self.head_size_attr) and all(isinstance(m, nn.Linear) for m in linears)


#: BERT, RoBERTa, XLM-R, ELECTRA, CamemBERT... (``BertLayer`` and its copies in transformers).
BERT_UNITS = BlockUnits(
    attention="attention.self",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    attention_output="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
)

#: Every table, tried in order on blocks of models whose family names none.
KNOWN_UNITS: tuple[BlockUnits, ...] = (BERT_UNITS,)
