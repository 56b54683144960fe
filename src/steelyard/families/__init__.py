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
* :func:`family_of` / :class:`Family` / :func:`register_family` — the family table itself;
* :func:`geometry` / :func:`kv_cache` / :func:`active_parameters` — attention per layer, FFN / experts,
  state space, the KV cache and the parameters a token uses (:mod:`steelyard.families.geometry`);
* :func:`modality` / :func:`example_inputs` / :func:`meta_attention` — what a model reads, built so it
  also runs on the meta device (:mod:`steelyard.families.inputs`).
"""

from __future__ import annotations

from steelyard.families.blocks import Blocks, find_blocks, find_stacks, find_units, max_positions
from steelyard.families.config_keys import CONFIG_KEYS, config_int, config_number
from steelyard.families.geometry import (
    FeedForward,
    Geometry,
    KVCache,
    LayerAttention,
    StateSpace,
    active_parameters,
    geometry,
    kv_cache,
    recurrent_state_bytes,
    routed_expert_parameters,
)
from steelyard.families.inputs import VISION_MODEL_TYPES, example_inputs, meta_attention, modality
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
    "VISION_MODEL_TYPES",
    "AttentionUnits",
    "BlockUnits",
    "Blocks",
    "Dimensions",
    "ExpertUnits",
    "Family",
    "FeedForward",
    "FfnUnits",
    "Geometry",
    "KVCache",
    "LayerAttention",
    "Stack",
    "StateSpace",
    "UnitSet",
    "UnitStack",
    "active_parameters",
    "config_int",
    "config_number",
    "dimensions",
    "drop_layers",
    "example_inputs",
    "family_for_class",
    "family_for_type",
    "family_of",
    "find_blocks",
    "find_stacks",
    "find_units",
    "geometry",
    "keep_config_layers",
    "kv_cache",
    "max_positions",
    "meta_attention",
    "modality",
    "model_config",
    "recurrent_state_bytes",
    "register_family",
    "routed_expert_parameters",
    "spread",
    "unit_stacks",
]
