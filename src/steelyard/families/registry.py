"""Family entries: what each architecture is, looked up by ``model_type`` or by module class.

A :class:`Family` says where its stacks of repeated blocks are (relative to the model's
``base_model``), which config attribute counts each stack, where the prunable units of a block live
(:class:`~steelyard.families.units.BlockUnits`) and how many positions the embeddings reserve.
Profiling, compression, distillation, evaluation and search ask :func:`family_of` (or the helpers in
:mod:`steelyard.families.blocks`) instead of keeping tables of their own.

A model no entry names gets :data:`GENERIC`, which tries the usual stack paths one after another.
To add a family: one :class:`Family` in :data:`FAMILIES` (or :func:`register_family` from outside).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from steelyard.errors import ConfigError
from steelyard.families.units import BERT_UNITS, BlockUnits


@dataclass(frozen=True)
class Stack:
    """One stack of repeated blocks: its path and the config attribute holding its length.

    ``count_key`` None means the family's single depth (``num_hidden_layers`` and its aliases,
    :data:`~steelyard.families.config_keys.CONFIG_KEYS`).
    """

    path: str
    role: str = "blocks"
    count_key: str | None = None


@dataclass(frozen=True)
class Family:
    """What steelyard knows about one architecture family."""

    name: str
    #: ``config.model_type`` values of this family.
    model_types: tuple[str, ...]
    #: Every stack the family has (encoder and decoder separately), relative to ``base_model``.
    stacks: tuple[Stack, ...]
    #: Module class name prefixes, for modules without a config (``"Bert"`` matches ``BertModel``).
    class_prefixes: tuple[str, ...] = ()
    #: Where the prunable units of a block live; None when structured pruning does not know them.
    units: BlockUnits | None = None
    #: Position-embedding rows not usable by tokens (RoBERTa keeps padding_idx + 1 of them).
    reserved_positions: int = 0
    #: ``stacks`` are alternative spellings of one stack (versions of transformers, :data:`GENERIC`):
    #: the first one present is taken.
    alternatives: bool = False


ENCODER_LAYER = (Stack("encoder.layer"),)

FAMILIES: list[Family] = [
    Family("bert", ("bert", "electra", "ernie", "megatron-bert", "xlm"), ENCODER_LAYER,
           ("Bert", "Electra", "Ernie", "MegatronBert"), BERT_UNITS),
    Family("roberta", ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text"), ENCODER_LAYER,
           ("Roberta", "XLMRoberta", "Camembert", "Data2VecText"), BERT_UNITS, reserved_positions=2),
    Family("distilbert", ("distilbert",), (Stack("transformer.layer"),), ("DistilBert",)),
    # transformers 5 moved ViT's blocks from ``encoder.layer`` to ``layers``: either spelling is taken.
    Family("vit", ("vit", "deit", "beit", "dinov2", "vit_mae"), (Stack("layers"), Stack("encoder.layer")),
           ("ViT", "DeiT", "Beit", "Dinov2"), alternatives=True),
    Family("gpt2", ("gpt2",), (Stack("h"),), ("GPT2",)),
    Family("llama", ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
                     "gemma3_text", "phi3", "olmo", "olmo2", "smollm3", "granite"),
           (Stack("layers"),), ("Llama", "Mistral", "Mixtral", "Qwen", "Gemma", "Phi3", "Olmo", "SmolLM3", "Granite")),
    Family("t5", ("t5", "mt5", "umt5"),
           (Stack("encoder.block", "encoder", "num_layers"), Stack("decoder.block", "decoder", "num_decoder_layers")),
           ("T5", "MT5", "UMT5")),
    Family("bart", ("bart", "mbart", "marian", "pegasus", "m2m_100", "nllb-moe"),
           (Stack("encoder.layers", "encoder", "encoder_layers"), Stack("decoder.layers", "decoder", "decoder_layers")),
           ("Bart", "MBart", "Marian", "Pegasus", "M2M100")),
]

#: Models no entry names: the usual paths, the first one present wins.
GENERIC = Family(
    "generic", (),
    tuple(Stack(p) for p in ("encoder.layer", "encoder.layers", "transformer.layer", "layers", "h", "transformer.h",
                             "decoder.layers")),
    alternatives=True,
)


def register_family(family: Family) -> None:
    """Add a family (tried before the built-in ones, so it can also override one of them)."""
    if any(f.name == family.name for f in FAMILIES):
        raise ConfigError(f"a model family named {family.name!r} is already registered")
    FAMILIES.insert(0, family)


def family_for_type(model_type: str | None) -> Family | None:
    """The family of a ``config.model_type``, or None."""
    return next((f for f in FAMILIES if model_type in f.model_types), None) if model_type else None


def family_for_class(module: nn.Module) -> Family | None:
    """The family whose class prefixes match the module's class name (longest prefix wins), or None."""
    name = type(module).__name__
    best: tuple[int, Family] | None = None
    for family in FAMILIES:
        for prefix in family.class_prefixes:
            if name.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), family)
    return best[1] if best else None


def model_config(model: nn.Module) -> Any:
    """The Hugging Face config of ``model``, or of the whole model it wraps (a head-only classifier)."""
    config = getattr(model, "config", None)
    if config is None:
        inner = getattr(model, "encoder", None)
        config = getattr(inner, "config", None) if isinstance(inner, nn.Module) else None
    return config


def family_of(model: nn.Module | Any) -> Family:
    """The family of a module (its config's model type, else its class) or of a config; else GENERIC."""
    config = model_config(model) if isinstance(model, nn.Module) else model
    found = family_for_type(getattr(config, "model_type", None))
    if found is None and isinstance(model, nn.Module):
        base = getattr(model, "base_model", model)
        found = family_for_class(base if isinstance(base, nn.Module) else model)
    return found or GENERIC
