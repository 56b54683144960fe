"""Find a model's stacks of repeated blocks, and the prunable units inside them.

:func:`find_stacks` returns every stack (an encoder-decoder's two separately), :func:`find_blocks`
the first one (the encoder, for encoder-decoders; the only one elsewhere), as a qualified path from
the model's root and the ``ModuleList`` itself. Paths are searched from ``base_model``, then the
model, then the whole model a head-only classifier wraps (steelyard's ``PooledClassifier`` keeps it
as ``encoder``), so ``BertForSequenceClassification`` gives ``bert.encoder.layer`` and a head-only
checkpoint ``encoder.encoder.layer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from steelyard.families.config_keys import CONFIG_KEYS, config_int
from steelyard.families.registry import GENERIC, Family, Stack, family_of, model_config
from steelyard.families.units import BlockUnits, table_for


@dataclass(frozen=True)
class Blocks:
    """One stack found in a model: where it is, the blocks, and what counts them in the config."""

    path: str
    layers: nn.ModuleList
    stack: Stack
    family: Family

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def parent_path(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def attr(self) -> str:
        return self.path.rpartition(".")[2]

    def count_key(self, config: Any) -> str | None:
        """The config attribute that holds this stack's length (None when the config has none)."""
        if self.stack.count_key is not None:
            value = getattr(config, self.stack.count_key, None)
            return self.stack.count_key if isinstance(value, int) and not isinstance(value, bool) else None
        found = config_int(config, "layers")
        return found[0] if found else None


def _roots(model: nn.Module) -> list[nn.Module]:
    roots = [getattr(model, "base_model", model), model]
    inner = getattr(model, "encoder", None)
    if isinstance(inner, nn.Module) and getattr(inner, "config", None) is not None:
        roots.append(getattr(inner, "base_model", inner))  # a head-only classifier around a whole model
    return [r for i, r in enumerate(roots) if isinstance(r, nn.Module) and r not in roots[:i]]


def _at(root: nn.Module, path: str) -> Any:
    node: Any = root
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def find_stacks(model: nn.Module) -> list[Blocks]:
    """Every stack of repeated blocks in ``model`` (see the module docstring), in the family's order.

    A model whose family's paths are absent (a custom module with a known config) is searched
    with the generic paths.
    """
    family = family_of(model)
    found = _search(model, family)
    return found if found or family is GENERIC else _search(model, GENERIC)


def _search(model: nn.Module, family: Family) -> list[Blocks]:
    names = {id(m): n for n, m in model.named_modules()}
    for root in _roots(model):
        found = []
        for stack in family.stacks:
            node = _at(root, stack.path)
            if isinstance(node, nn.ModuleList) and len(node) > 0 and id(node) in names:
                found.append(Blocks(names[id(node)], node, stack, family))
                if family.alternatives:
                    break
        if found:
            return found
    return []


def find_blocks(model: nn.Module) -> Blocks | None:
    """The model's (first) stack of repeated blocks, or None for models without one."""
    stacks = find_stacks(model)
    return stacks[0] if stacks else None


def find_units(model: nn.Module) -> tuple[BlockUnits, list[nn.Module]] | None:
    """(units table, blocks) of the first stack when its blocks have attention heads and FFN neurons
    (or experts) steelyard can cut — the family's table, else the first known table every block
    matches (:func:`steelyard.families.units.table_for`) — or None. Surgery on every stack:
    :func:`steelyard.families.surgery.unit_stacks`."""
    blocks = find_blocks(model)
    if blocks is None:
        return None
    layers = list(blocks.layers)
    units = table_for(layers, (blocks.family.units,) if blocks.family.units else ())
    return (units, layers) if units is not None else None


def max_positions(config: Any) -> int | None:
    """The longest sequence a model's position embeddings allow, when its config says."""
    for key in CONFIG_KEYS["positions"]:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            reserved = family_of(config).reserved_positions
            return value - reserved if value > reserved else value
    return None


__all__ = ["Blocks", "find_blocks", "find_stacks", "find_units", "max_positions", "model_config"]
