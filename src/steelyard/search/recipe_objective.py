"""The objective of recipe searches: run a trial's compression recipe and return what it measured.

Every number comes from :func:`steelyard.compression.recipe.run_recipe`, on the *validation*
split (choosing among trials never looks at the test set), with the original model measured in
the same run:

- ``accuracy``: the compressed model's headline metric; ``baseline``: the original's;
  ``drop``: points lost (baseline − accuracy, ×100);
- ``latency``: the compressed model's median latency as a *fraction of the original's*, both
  timed in alternating rounds in the same trial (0.5 = 2x faster). A ratio measured side by
  side stays comparable across trials, workers and machines, where absolute times drift;
  ``speedup`` is its inverse, ``latency_s`` the absolute median;
- there is no ``energy``: both models of a trial run on one device with the same threads, so an
  estimate (latency × the device's power model) ranks trials exactly as ``latency`` does, and no
  power counter is read during a trial's timing. Rather than offer latency under another name, the
  objective is refused with that reason (:data:`NOT_OBJECTIVES`); ``steelyard profile`` states the
  energy per batch and per sample of one model, measured (RAPL / NVML) or estimated, saying which;
- ``size``: bytes of the weights in memory; ``flops``: matrix FLOPs of one timing batch
  (a quantized model keeps the count of the float model it comes from); ``params``.

Hopeless trials (``optimize``): a recipe's cost is fixed before any training step runs, so
when the study already holds a trial within the accuracy budget, the recipe's compression steps
are applied alone (seconds) and the trial is pruned when its cost cannot beat that trial's —
a recovery fine-tune changes accuracy, not cost. A recipe that only trains keeps the original's
structure and precision, so its cost is the original's (:func:`original_cost`) and it is pruned at
once. A recipe whose cheap steps calibrate (static int8, AWQ / GPTQ, OpenVINO's NNCF int8) calibrates
on the trial's data in that cheap run too: calibrating costs far less than the training it may save, and
the int8 model runs as fast whatever its weights were trained to (BENCHMARKS §10e: two OpenVINO int8
trials outside this rule took 19 of a 30-minute search). Latency-like costs get a margin
(``prune_margin``) for timing noise; size and FLOPs are exact.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from steelyard.data.options import DataOptions

#: Costs ``optimize --objective`` accepts.
COSTS = ("latency", "size", "flops")
#: Names that are not costs a trial can be ranked by, with the reason (the error a user sees).
NOT_OBJECTIVES = {
    "energy": "energy is not an objective: both models of a trial run on this machine with the same threads and "
              "no power counter is read while timing, so estimated energy (latency × one power figure) ranks "
              "trials exactly as latency does; use --objective latency, and `steelyard profile` for energy per "
              "batch and per sample",
}
#: Names a trial of a recipe search returns (valid ``search --objectives``), with their direction.
RECIPE_METRICS = {
    "accuracy": "max", "drop": "min", "latency": "min", "speedup": "max", "size": "min",
    "size_ratio": "max", "flops": "min", "flops_ratio": "min", "params": "min", "agreement": "max",
}
#: Costs whose pre-training measurement is a timing (noisy): prune only beyond this margin.
TIMED = ("latency",)
#: The search-space parameter that names the runtime a trial is served (and timed) in.
BACKEND_PARAM = "backend"


def recipe_metrics(result: Any) -> dict[str, float]:
    """The numbers of a :class:`~steelyard.compression.recipe.RecipeResult` by name (missing ones left out)."""
    out: dict[str, float] = {}
    before, after = result.before, result.after
    if after.headline is not None and before.headline is not None:
        out[after.metric] = float(after.headline.value)
        out["accuracy"] = float(after.headline.value)
        out["baseline"] = float(before.headline.value)
        out["drop"] = float(result.metric_drop)
        out["ci_low"], out["ci_high"] = float(after.headline.ci_low), float(after.headline.ci_high)
    if result.speedup:
        out["speedup"] = float(result.speedup)
        out["latency"] = 1.0 / float(result.speedup)
        out["latency_s"] = float(after.latency.median)
        out["latency_before_s"] = float(before.latency.median)
    out["size"] = float(after.bytes)
    out["size_ratio"] = float(result.size_ratio)
    out["params"] = float(after.params)
    if after.flops is not None:
        out["flops"] = float(after.flops)
    if result.flops_ratio is not None:
        out["flops_ratio"] = float(result.flops_ratio)
    if after.agreement is not None:
        out["agreement"] = float(after.agreement)
    out.update(_statistics(result))
    return out


def _statistics(result: Any) -> dict[str, float]:
    """The tests behind ``drop`` and ``speedup``: the paired test's p-value of the headline metric's change
    (``drop_p``) and the speedup's interval over the interleaved rounds (``speedup_low`` / ``speedup_high``)."""
    out: dict[str, float] = {}
    change = result.changes.get(result.after.metric) if result.after.metric else None
    if change is not None:
        out["drop_p"] = float(change.p_value)
    if result.speed is not None:
        out["speedup_low"], out["speedup_high"] = float(result.speed.ci_low), float(result.speed.ci_high)
        out["speedup_rounds"] = float(result.speed.rounds)
    return out


#: Model and data loaded once per trial process: (model, data) → (handle, dataset).
_LOADED: dict[tuple[Any, ...], tuple[Any, Any]] = {}


@dataclass(frozen=True)
class RecipeObjective:
    """Picklable (it is sent to the trial process); loads the model and data once per process."""

    model: str
    data: DataOptions
    options: Any  # RecipeOptions (eval_split="validation")
    task: str | None = None
    #: Hopeless-trial rule: the cost being minimized and the accuracy budget (points); off when None.
    cost: str | None = None
    max_drop: float | None = None
    prune_margin: float = 0.10

    def load(self) -> tuple[Any, Any]:
        key = (self.model, self.task, self.options.max_length, self.data)
        if key not in _LOADED:
            from steelyard.models import InputSpec, LoadConfig, load_model

            cfg = LoadConfig(task="causal-lm" if self.task == "causal-lm" else None,
                             inputs=InputSpec(seq_len=self.options.max_length))
            _LOADED.clear()
            _LOADED[key] = (load_model(self.model, cfg), self.data.load())
        return _LOADED[key]

    def __call__(self, ctx: Any) -> dict[str, float]:
        from steelyard.compression.recipe import parse_recipe, run_recipe

        if not ctx.recipe:
            ctx.prune("every step of the recipe is off: that is the original model itself")
        recipe, options = self._served(ctx, parse_recipe(ctx.recipe))
        handle, dataset = self.load()
        self._prune_if_hopeless(ctx, recipe, handle, options, dataset)
        result = run_recipe(handle, recipe, dataset, options)
        metrics = recipe_metrics(result)
        ctx.set_attr("steps", [{"name": s.name, "seconds": round(s.seconds, 2), "validation": s.validation}
                               for s in result.steps])
        return metrics

    def _served(self, ctx: Any, recipe: Any) -> tuple[Any, Any]:
        """A ``backend`` parameter (the runtime × precision dimension): the trial is run, and timed, in that
        runtime (steelyard.backends.serve.route); a pair that cannot run (torch-compile + int8) is pruned."""
        from steelyard.backends.serve import route
        from steelyard.errors import ConfigError

        backend = ctx.params.get(BACKEND_PARAM)
        if backend in (None, "torch", "none"):
            return recipe, self.options
        try:
            recipe, serve = route(recipe, str(backend), float_onnx=True)
        except ConfigError as exc:
            ctx.prune(f"backend {backend}: {exc}")
        ctx.set_attr("backend", str(backend))
        return recipe, dataclasses.replace(self.options, serve=serve)

    def _prune_if_hopeless(self, ctx: Any, recipe: Any, handle: Any, options: Any = None,
                           dataset: Any = None) -> None:
        options = options or self.options
        if self.cost is None or self.max_drop is None:
            return
        feasible = [h for h in ctx.history if h.get("drop", math.inf) <= self.max_drop and self.cost in h]
        if not feasible or not any(s.trains for s in recipe.steps):
            return
        cheap = [s for s in recipe.steps if not s.trains]
        if not cheap:  # only training: the structure and the precision stay the original's, and so does the cost
            cost, when = original_cost(self.cost, feasible[0]), "(the original's: the recipe only trains)"
        else:
            from steelyard.compression.recipe import Recipe, run_recipe
            from steelyard.compression.recipe.runner import needs_data

            # A calibrated step needs the data even untrained: the cheap run calibrates on the trial's own
            # training batches, as the trial will (and skips the evaluation when nothing calibrates).
            untrained = Recipe(tuple(cheap))
            calibrated = needs_data(untrained, options.serve)
            if calibrated and dataset is None:
                return
            opts = dataclasses.replace(options, rounds=3, warmup=1, measure_latency=self.cost in TIMED, n_resamples=1)
            cost = recipe_metrics(run_recipe(handle, untrained, dataset if calibrated else None, opts)).get(self.cost)
            when = "before training"
        if cost is None:
            return
        best = min(h[self.cost] for h in feasible)
        ctx.set_attr("cost_before_training", cost)
        margin = self.prune_margin if self.cost in TIMED else 0.0
        if cost >= best * (1 + margin):
            ctx.prune(f"{self.cost} {cost:.4g} {when} cannot beat {best:.4g}, already reached within the "
                      f"{self.max_drop:g}-point budget")


def original_cost(cost: str, trial: dict[str, float]) -> float | None:
    """The uncompressed model's ``cost``, from any completed trial's metrics (each trial measured the original
    beside its own model): latency is a ratio to the original's, so 1; size and FLOPs from the trial's ratios."""
    if cost == "latency":
        return 1.0
    if cost == "size" and trial.get("size_ratio"):
        return trial["size"] * trial["size_ratio"]
    if cost == "flops" and trial.get("flops_ratio"):
        return trial["flops"] / trial["flops_ratio"]
    return None
