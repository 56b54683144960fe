"""Architecture knowledge in one place: where each family keeps its blocks, units and counts.

Sits at the bottom with ``models/`` and ``hardware/``: it imports torch and nothing from steelyard
but :mod:`steelyard.errors`. Everything that needs to know "where are the layers" or "which layers
to keep" asks here:

* :func:`find_blocks` / :func:`find_stacks` — the stacks of repeated blocks (``Blocks``);
* :func:`find_units` — attention heads and FFN neurons inside the blocks (``BlockUnits``);
* :func:`spread` — the one rule for which layers a shallower model keeps;
* :func:`keep_config_layers` — the config of a model with fewer layers;
* :mod:`steelyard.families.surgery` — drop layers, cut heads (whole GQA groups), FFN neurons and
  experts, and state the result in the config (:func:`unit_stacks`, :func:`dimensions`);
* :func:`config_int` / :func:`config_number` / :data:`CONFIG_KEYS` — depth, width, heads, FFN width and
  positions under any of their aliases;
* :func:`family_of` / :class:`Family` / :func:`register_family` — the family table itself.
"""

from __future__ import annotations

from steelyard.families.blocks import Blocks, find_blocks, find_stacks, find_units, max_positions
from steelyard.families.config_keys import CONFIG_KEYS, config_int, config_number
from steelyard.families.registry import (
    FAMILIES,
    GENERIC,
    Family,
    Stack,
    family_for_class,
    family_for_type,
    family_of,
    model_config,
    register_family,
)
from steelyard.families.spread import spread
from steelyard.families.surgery import (
    PER_LAYER_LISTS,
    SURGERY_ATTRS,
    Dimensions,
    UnitSet,
    UnitStack,
    dimensions,
    drop_layers,
    keep_config_layers,
    unit_stacks,
)
from steelyard.families.units import (
    BERT_UNITS,
    KNOWN_UNITS,
    AttentionUnits,
    BlockUnits,
    ExpertUnits,
    FfnUnits,
)

__all__ = [
    "BERT_UNITS",
    "CONFIG_KEYS",
    "FAMILIES",
    "GENERIC",
    "KNOWN_UNITS",
    "PER_LAYER_LISTS",
    "SURGERY_ATTRS",
    "AttentionUnits",
    "BlockUnits",
    "Blocks",
    "Dimensions",
    "ExpertUnits",
    "Family",
    "FfnUnits",
    "Stack",
    "UnitSet",
    "UnitStack",
    "config_int",
    "config_number",
    "dimensions",
    "drop_layers",
    "family_for_class",
    "family_for_type",
    "family_of",
    "find_blocks",
    "find_stacks",
    "find_units",
    "keep_config_layers",
    "max_positions",
    "model_config",
    "register_family",
    "spread",
    "unit_stacks",
]
