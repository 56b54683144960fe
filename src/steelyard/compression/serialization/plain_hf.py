"""What plain ``transformers`` makes of a folder steelyard writes: the same model, or a loud error.

``AutoModel*.from_pretrained`` builds the architecture from ``config.json`` and fills it with
whatever weights match by name; the rest it initialises at random with only a load-report
warning. A folder whose layers the config cannot describe (int8 / int4 layers, low-rank pairs,
per-layer head counts, an ONNX graph, a mean-pooled head) would therefore "load" with random
weights. Such a folder is *guarded* instead:

* its Hugging Face config is written to :data:`STEELYARD_CONFIG` (steelyard's loaders read it
  there), and its weights to :data:`WEIGHTS_FILE`, a name transformers never looks for;
* ``config.json`` names the model type :data:`GUARD_MODEL_TYPE`, which no transformers version
  knows, so ``AutoConfig`` / ``AutoModel*`` / ``pipeline`` raise ``ValueError: ... model type
  `steelyard-artifact: load this folder with steelyard.load_model` ...`` instead of guessing.

A folder whose model the config does describe exactly (:func:`plain_mismatch` finds nothing: FFN-,
uniform head- and layer-pruned, sparse, fp16 / bf16, fine-tuned, distilled) stays a plain
``save_pretrained`` folder that transformers loads with the same outputs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Where a guarded folder keeps its Hugging Face config.
STEELYARD_CONFIG = "steelyard_config.json"
#: Where a guarded folder keeps its weights (transformers reads model*.safetensors / *.bin only).
WEIGHTS_FILE = "steelyard_weights.safetensors"
#: The ``model_type`` of a guarded ``config.json``; transformers quotes it in the error it raises.
GUARD_MODEL_TYPE = "steelyard-artifact: load this folder with steelyard.load_model"
_GUARD_KEY = "steelyard"


def plain_mismatch(model: nn.Module) -> str | None:
    """Why ``from_pretrained`` on ``model``'s own config would not rebuild ``model``; None when it would.

    The model's class is built again from its config on the meta device (no memory) and compared
    with the model itself: every state-dict key with its shape and kind (float or integer), and the
    size attributes steelyard's loader would otherwise set back (heads, head size, widths).
    """
    from steelyard.compression.serialization.records import module_records, structural_attrs

    config = getattr(model, "config", None)
    if not callable(getattr(model, "save_pretrained", None)) or config is None:
        return f"a {type(model).__name__} is not a transformers model"
    records = module_records(model)
    if records:
        kinds = sorted({str(r.get("kind")) for r in records.values()})
        return f"layers transformers cannot build from a config ({', '.join(kinds)})"
    try:
        with torch.device("meta"):
            ref = type(model)._from_config(copy.deepcopy(config))
    except Exception as exc:  # any failure to rebuild means transformers cannot rebuild it either
        return f"its config does not build a {type(model).__name__} ({type(exc).__name__})"
    mine, theirs = _tensor_kinds(model), _tensor_kinds(ref)
    if mine.keys() != theirs.keys():
        return "its tensors have other names than its config builds"
    changed = [k for k in mine if mine[k] != theirs[k]]
    if changed:
        return f"tensor shapes its config cannot state ({changed[0]}{' …' if len(changed) > 1 else ''})"
    if structural_attrs(model) != structural_attrs(ref):
        return "layer sizes its config cannot state (per-layer heads or widths)"
    return None


def _tensor_kinds(module: nn.Module) -> dict[str, tuple[tuple[int, ...], bool]]:
    return {k: (tuple(v.shape), v.is_floating_point()) for k, v in module.state_dict().items()
            if isinstance(v, torch.Tensor)}


def write_guard(folder: Path, config: Any, reason: str) -> None:
    """Keep ``config`` under :data:`STEELYARD_CONFIG` and write a ``config.json`` transformers refuses."""
    if config is not None and hasattr(config, "to_json_file"):
        config.to_json_file(str(folder / STEELYARD_CONFIG))
    guard = {
        "model_type": GUARD_MODEL_TYPE,
        _GUARD_KEY: {
            "load_with": "steelyard.load_model(folder) or any steelyard command",
            "why": f"plain transformers would not rebuild this model: {reason}",
            "config": STEELYARD_CONFIG if (folder / STEELYARD_CONFIG).is_file() else None,
        },
    }
    (folder / "config.json").write_text(json.dumps(guard, indent=2) + "\n")


def is_guarded(folder: Path) -> bool:
    """Whether ``folder``'s ``config.json`` is a guard written by :func:`write_guard`."""
    file = folder / "config.json"
    if not file.is_file():
        return False
    try:
        return json.loads(file.read_text()).get("model_type") == GUARD_MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def read_config(folder: Path) -> Any:
    """The folder's Hugging Face config: :data:`STEELYARD_CONFIG` when guarded, else ``config.json``; or None."""
    from transformers import AutoConfig

    if (folder / STEELYARD_CONFIG).is_file():
        return AutoConfig.from_pretrained(str(folder / STEELYARD_CONFIG))
    if (folder / "config.json").is_file() and not is_guarded(folder):
        return AutoConfig.from_pretrained(str(folder))
    return None
