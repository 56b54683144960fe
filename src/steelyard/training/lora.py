"""LoRA: train low-rank adapters on a frozen model (through peft), then merge them back in.

Recovering a large model after pruning by full fine-tuning needs gradients and optimizer state
for every weight (AdamW: three more copies of the model). With LoRA (Hu et al., 2021) each
target layer ``W`` gets a trainable ``B·A`` of rank ``r`` (``A``: r × in, ``B``: out × r, ``B`` zero
at the start, scaled by ``alpha / r``) and ``W`` stays frozen, so only the adapters train. After
training :meth:`Adapters.merge` folds ``W + (alpha / r)·B·A`` into each layer (peft's
``merge_and_unload``): the model is again a plain model of its original shape, which saves as a
plain Hugging Face folder and which later steps (int4, int8) quantize like any other.

The target layers default to the family's attention and FFN projections (``families/units.py``:
Llama's ``q_proj`` … ``down_proj``, GPT-2's ``c_attn`` / ``c_proj`` / ``c_fc``), else every
linear layer inside the repeated blocks; never the embeddings or the output head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from steelyard.errors import ConfigError

#: The one line a missing peft gives (exit 2).
MISSING_PEFT = "LoRA needs peft, which is not installed: pip install 'steelyard[llm]'"


@dataclass(frozen=True)
class AdapterSummary:
    """What LoRA trained: the rank, the scale's alpha, the targeted layer names (and how many layers
    matched), the parameters that train (``trainable``: the adapters, plus a classifier's head) and the
    model's own (``total``)."""

    rank: int
    alpha: float
    targets: tuple[str, ...]
    layers: int
    trainable: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "alpha": self.alpha, "targets": list(self.targets), "layers": self.layers,
                "trainable": self.trainable, "total": self.total}


def adapter_note(summary: AdapterSummary) -> str:
    """What LoRA trained, for a run's or a recipe step's notes."""
    share = summary.trainable / summary.total if summary.total else 0.0
    return (f"LoRA rank {summary.rank} (alpha {summary.alpha:g}) on {'+'.join(summary.targets)} "
            f"({summary.layers} layers): {summary.trainable:,} trainable parameters ({share:.2%} of the model's "
            f"{summary.total:,}), merged back into the model")


def parse_targets(text: str | None) -> tuple[str, ...]:
    """``"q_proj+v_proj"`` (or commas / spaces) → ``("q_proj", "v_proj")``; None or empty → ()."""
    if not text:
        return ()
    return tuple(name for name in text.replace(",", "+").replace(" ", "+").split("+") if name)


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _unit_paths(units: Any) -> list[str]:
    """Paths inside one block of the linear layers a units table names: attention and FFN projections."""
    paths: list[str] = []
    for attention in units.attentions:
        paths.extend(p for p in (*attention.projections(), attention.output) if p)
    for ffn in (units.ffn, units.experts.shared if units.experts is not None else None):
        if ffn is not None:
            paths.extend((*ffn.inputs, ffn.output))
    return paths


def target_layers(module: nn.Module) -> list[str]:
    """Full names of the layers LoRA adapts by default: the family's attention and FFN projections in
    every block, else every linear-like layer inside the blocks (never embeddings or the head)."""
    from steelyard.families import find_blocks, unit_stacks
    from steelyard.families.units import has, is_linear_like, resolve

    name_of = {id(m): n for n, m in module.named_modules()}
    found: list[str] = []
    for stack in unit_stacks(module):
        paths = _unit_paths(stack.units)
        for block in stack.layers:
            for path in paths:
                layer = resolve(block, path) if has(block, path) else None
                if layer is not None and is_linear_like(layer):
                    found.append(name_of[id(layer)])
    if not found:
        blocks = find_blocks(module)
        for block in list(blocks.layers) if blocks is not None else []:
            found.extend(name_of[id(m)] for m in block.modules() if m is not block and is_linear_like(m))
    out = list(dict.fromkeys(found))
    if not out:
        raise ConfigError(f"LoRA: cannot tell which layers of {type(module).__name__} to adapt (no transformer "
                          "blocks with linear layers found); name them with lora_targets (e.g. q_proj+v_proj)")
    return out


def default_targets(module: nn.Module) -> tuple[str, ...]:
    """The short names of :func:`target_layers` (``q_proj``, ``k_proj``, ...), in order."""
    return tuple(dict.fromkeys(_last(n) for n in target_layers(module)))


@dataclass
class Adapters:
    """LoRA adapters injected into a module (in place), until :meth:`merge` folds them back in."""

    module: nn.Module
    tuner: Any
    summary: AdapterSummary
    #: Every parameter's ``requires_grad`` before the adapters froze the base, restored by merge.
    flags: dict[str, bool] = field(default_factory=dict)
    merged: bool = False

    def merge(self) -> nn.Module:
        """Fold the adapters into their layers and unwrap them: the module has its original
        state-dict keys and shapes again, and its parameters their ``requires_grad``."""
        if self.merged:
            return self.module
        out = self.tuner.merge_and_unload(progressbar=False)
        if out is not self.module:  # peft unwraps in place; anything else would be a new object nobody holds
            raise ConfigError("LoRA: merging returned another module than the one trained")
        if hasattr(self.module, "peft_config"):
            delattr(self.module, "peft_config")
        for name, p in self.module.named_parameters():
            p.requires_grad_(self.flags.get(name, True))
        self.merged = True
        return self.module


#: Top-level names of a classifier's task head, which trains in full next to the adapters (peft's
#: ``modules_to_save`` for sequence classification): a new head starts at random.
HEAD_PREFIXES = ("classifier.", "score.", "head.", "pre_classifier.", "fc.")


def attach(module: nn.Module, rank: int, alpha: float | None = None, targets: tuple[str, ...] = (), *,
           train_head: bool = False) -> Adapters:
    """Inject rank-``rank`` LoRA adapters into ``module`` (in place) and freeze everything else
    (but a classifier's head with ``train_head``, see :data:`HEAD_PREFIXES`).

    ``alpha`` None takes 2 · rank (a scale of 2, whatever the rank); ``targets`` () the
    :func:`default_targets`. Raises ConfigError (exit 2) when peft is missing or no layer matches.
    """
    if rank < 1:
        raise ConfigError(f"LoRA rank must be at least 1, got {rank}")
    try:
        from peft import LoraConfig
        from peft.tuners.lora import LoraModel
    except ImportError:
        raise ConfigError(MISSING_PEFT) from None
    from steelyard.families.units import is_linear_like

    if targets:  # the user's names match a layer of that name anywhere, as peft matches them
        layers = [n for n, _ in module.named_modules() if n and _last(n) in targets]
        if not layers:
            raise ConfigError(f"LoRA: no layer of {type(module).__name__} is named {' / '.join(targets)}")
    else:
        layers = target_layers(module)
    names = tuple(dict.fromkeys(_last(n) for n in layers))
    alpha = float(2 * rank if alpha is None else alpha)
    matched = [module.get_submodule(n) for n in layers]
    unsupported = [type(m).__name__ for m in matched if not is_linear_like(m) and not isinstance(m, nn.Embedding)]
    if unsupported:
        raise ConfigError(f"LoRA adapts float linear layers; {' / '.join(names)} include {unsupported[0]} layers "
                          "(quantize after the recovery step, not before)")
    conv1d = any(type(m).__name__ == "Conv1D" for m in matched)  # GPT-2 stores weights as (in, out)
    flags = {n: p.requires_grad for n, p in module.named_parameters()}
    total = sum(p.numel() for p in module.parameters())
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=layers, lora_dropout=0.0, bias="none",
                        fan_in_fan_out=conv1d)
    try:
        tuner = LoraModel(module, config, "default")
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"LoRA could not adapt {type(module).__name__}: {str(exc).strip().splitlines()[0]}") from None
    if train_head:
        for name, p in module.named_parameters():
            if name.startswith(HEAD_PREFIXES) and p.is_floating_point():
                p.requires_grad_(True)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    summary = AdapterSummary(rank, alpha, tuple(names), len(matched), trainable, total)
    return Adapters(module, tuner, summary, flags)
