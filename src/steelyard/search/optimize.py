"""``optimize``: the built-in space of compression recipes and the study that searches it.

The space, for a transformer with L layers and H heads (the dimensions come from
:func:`steelyard.families.dimensions`; those the model lacks are left out, e.g. depth and heads
for a CNN, experts for a dense model):

- ``depth``: share of the layers dropped, in whole layers, up to two thirds (``prune:layers``);
- ``ffn``: share of the FFN neurons (CNN: channels; MoE: each expert's) removed, ``heads``: share
  of the attention heads removed in every layer — only shares that remove whole key / value groups
  of a grouped-query model — and ``experts``: share of the experts removed in every MoE layer
  (``prune:structured``), each 0, ¼, ½ or ¾ (:data:`FRACTIONS`);
- ``recovery``: none, a short fine-tune, or a short distillation from the original model
  (``max_steps`` optimizer steps, with as many epochs as those steps need on the training split, so
  ``--recovery-steps`` beyond one epoch is not cut at one; the teacher is the model the search started from);
- ``precision``: fp32 or int8 dynamic quantization (the last step);
- ``backend`` (with ``--backend``): the runtime the trial is served and timed in (torch, onnxruntime,
  openvino: int8 there is ONNX Runtime's dynamic int8 or NNCF's calibrated int8), see
  :func:`steelyard.backends.serve.route`.

A new study first tries five recipes (:func:`starting_points`), then the sampler's.

Two objectives: the headline metric (``accuracy:max``) on the validation split and the chosen
cost (``:min``). The answer is the cheapest completed trial whose drop vs the original (same
split, same run) is at most ``max_drop`` points: the selection rule stored with the study.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from steelyard.search.pareto import Objective
from steelyard.search.space import SearchSpace
from steelyard.search.study import StudySpec

RECIPE_TEMPLATE = ("prune:layers,amount={depth}; prune:structured,amount={ffn},heads={heads},experts={experts}; "
                   "{recovery}; quantize:{precision}")


#: Shares of heads, FFN neurons and experts the space offers (heads: only those that remove whole kv groups).
#: ¾ is in: a distilled model a quarter as wide often keeps an easy task's accuracy (BENCHMARKS §10c), and
#: with at most a third of the depth kept that is where an 8x speedup over torch fp32 eager lies.
FRACTIONS = (0.0, 0.25, 0.5, 0.75)

#: Dimensions a recipe shrinks by a share (the cheapest corner takes each at its largest).
SHARES = ("depth", "ffn", "heads", "experts")


def model_dimensions(handle: Any) -> Any:
    """What the model can lose (:func:`steelyard.families.dimensions`: depth, heads, FFN, experts)."""
    from steelyard.families import dimensions

    config = getattr(handle.module, "config", None) or handle.config
    return dimensions(handle.module, config)


def layer_count(handle: Any) -> int | None:
    """Transformer blocks of the model, when depth pruning applies to it."""
    return model_dimensions(handle).layers


def builtin_space(handle: Any, recovery_steps: int = 100, recovery_lr: float = 1e-4,
                  backends: tuple[str, ...] = (), train_examples: int | None = None) -> SearchSpace:
    """The recipe space for ``handle``'s model (see the module docstring); ``backends``: the runtimes a
    trial may be served (and timed) in, a ``backend`` dimension beside precision; ``train_examples``: the
    size of the training split, which sets the epochs ``recovery_steps`` steps take."""
    dims = model_dimensions(handle)
    params: dict[str, Any] = {}
    if dims.layers is not None and dims.layers >= 2:
        depths = [round(k / dims.layers, 4) for k in range(dims.layers) if k / dims.layers <= 0.67]
        params["depth"] = {"type": "categorical", "choices": depths}
    params["ffn"] = {"type": "categorical", "choices": list(FRACTIONS)}
    heads = dims.head_fractions(FRACTIONS)
    if len(heads) > 1:
        params["heads"] = {"type": "categorical", "choices": heads}
    if dims.experts is not None and dims.experts >= 4:
        params["experts"] = {"type": "categorical", "choices": list(FRACTIONS)}
    epochs = recovery_epochs(recovery_steps, train_examples)
    train = f"epochs={epochs},max_steps={recovery_steps},lr={recovery_lr:g}"
    params["recovery"] = {"type": "categorical",
                          "choices": ["none", f"finetune:{train}", f"distill:{train}"]}
    params["precision"] = {"type": "categorical", "choices": ["none", "int8-dynamic"]}
    if backends:
        params["backend"] = {"type": "categorical", "choices": list(backends)}
    template = RECIPE_TEMPLATE
    if "depth" not in params:
        template = template.replace("prune:layers,amount={depth}; ", "")
    if "heads" not in params:
        template = template.replace(",heads={heads}", "")
    if "experts" not in params:
        template = template.replace(",experts={experts}", "")
    return SearchSpace.from_dict({"params": params, "recipe": template}, "the built-in optimize space")


def recovery_epochs(steps: int, train_examples: int | None) -> int:
    """Epochs enough for ``steps`` optimizer steps on ``train_examples`` (1 when unknown), at the batch size a
    recipe's ``finetune:`` / ``distill:`` step trains with (``FinetuneConfig``'s default)."""
    from steelyard.training.config import FinetuneConfig

    if not train_examples:
        return 1
    batch = FinetuneConfig.__dataclass_fields__["batch_size"].default
    return max(1, math.ceil(steps / math.ceil(train_examples / batch)))


def starting_points(space: SearchSpace, backend: str | None = None,
                    corner_backend: str | None = None) -> list[dict[str, Any]]:
    """Six recipes to try first, so that a search of a few dozen trials does not spend its first ten on
    random points only, in this order: int8 alone; the cheapest corner of the space (every share at its
    largest removed, distillation, int8); the same with half the heads given back (the cheapest step back
    from the corner: in a BERT-style layer with a 4x FFN, the FFN holds 8·d² of the 12·d² matmul work per
    token, so giving heads back costs half what giving FFN back does); the half corner (the deepest cut,
    half the FFN and heads, distillation, int8); half the layers + fine-tune + int8; a third of the layers
    and a quarter of the FFN + distillation + int8. The corners come early because they bracket the cost
    range at once: within budget, the corner is the answer and every dearer recipe is pruned before
    training (the hopeless-trial rule); over budget, the next steps back follow in order of what they cost.

    ``backend``: the runtime the points are served in (``optimize`` passes the fastest int8 runtime it
    measured on the uncompressed model); else the space's first. ``corner_backend``: the one the three
    corner points are served in (the fastest on the corner's structure), else ``backend``. Values not in the
    space are left out."""
    choices = {p.name: list(p.choices) for p in space.params}

    def nearest(name: str, target: float) -> Any:
        return min(choices[name], key=lambda v: abs(float(v) - target))

    def recovery(kind: str) -> Any:
        return next((c for c in choices.get("recovery", []) if str(c).startswith(kind)), None)

    corner = {name: 1.0 for name in SHARES}
    points = [({"precision": "int8-dynamic"}, backend),
              ({**corner, "recovery": recovery("distill"), "precision": "int8-dynamic"}, corner_backend or backend),
              ({**corner, "heads": 0.5, "recovery": recovery("distill"), "precision": "int8-dynamic"},
               corner_backend or backend),
              ({**corner, "ffn": 0.5, "heads": 0.5, "experts": 0.5, "recovery": recovery("distill"),
                "precision": "int8-dynamic"}, corner_backend or backend),
              ({"depth": 0.5, "recovery": recovery("finetune"), "precision": "int8-dynamic"}, backend),
              ({"depth": 0.33, "ffn": 0.25, "recovery": recovery("distill"), "precision": "int8-dynamic"}, backend)]
    out = []
    for point, served in points:
        full: dict[str, Any] = {}
        for name, values in choices.items():
            wanted = served if name == "backend" else point.get(name)
            if name in SHARES:
                full[name] = nearest(name, float(wanted or 0.0))
            else:
                full[name] = wanted if wanted in values else values[0]
        if full not in out:
            out.append(full)
    return out


def corner_structure(space: SearchSpace) -> str | None:
    """The prune steps of the space's cheapest corner (:func:`starting_points`' second point), as recipe
    text: the structure whose int8 ``optimize`` times in each runtime before the study starts, since the
    fastest runtime for a model a sixth the size is not always the uncompressed model's. None when the
    space prunes nothing."""
    from steelyard.compression.recipe import parse_recipe

    corner = {name: max(p.choices, key=float) for p in space.params if (name := p.name) in SHARES}
    text = space.recipe_text({**corner, "recovery": "none", "precision": "none"})
    if not text:
        return None
    steps = [s.text() for s in parse_recipe(text).steps if s.name.startswith("prune:")]
    return "; ".join(steps) or None


def optimize_spec(name: str, model: str, fingerprint: str, space: SearchSpace, data: str, cost: str,
                  max_drop: float, settings: dict[str, Any]) -> StudySpec:
    return StudySpec(
        name=name, model=model, fingerprint=fingerprint,
        objectives=(Objective("accuracy", "max"), Objective(cost, "min")),
        space=space.to_dict(), data=data, kind="optimize",
        selection={"primary": cost, "constraints": [["drop", "max", float(max_drop)]]},
        settings=settings,
    )


def slug(text: str) -> str:
    """A study-name-safe short form of a model or data source (its last path part)."""
    base = Path(str(text).rstrip("/")).name or str(text)
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", base).strip("-.") or "model"


def default_study_name(kind: str, model: str, data: str | None, *extra: str) -> str:
    """The same command gets the same name, so running it again resumes the study."""
    parts = [kind, slug(model)] + ([slug(data)] if data else []) + [slug(e) for e in extra if e]
    return "-".join(parts)
