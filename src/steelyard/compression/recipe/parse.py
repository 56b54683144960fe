"""Recipes: an ordered list of compression and training steps, from text or from YAML.

Text: steps separated by ``;``, each ``name,key=value,...``::

    prune:structured,amount=0.3; finetune:epochs=1; quantize:int8-dynamic

YAML (``recipe.yaml``): a list under ``steps:`` whose items are that same text, or a mapping
``{name: {key: value}}``::

    steps:
      - prune:structured: {amount: 0.3, heads: 0.25}
      - finetune: {epochs: 1}
      - quantize:int8-dynamic

Rules checked here, before any model is loaded: every name is a registered method or a training
step, every parameter is known and well typed, and the one quantization step (if any) comes
last, because a quantized model can no longer be trained, pruned or factorized.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steelyard.compression.recipe.steps import TRAINING_STEPS
from steelyard.compression.registry import METHODS, make_config, method_name, parse_assignments, parse_method
from steelyard.errors import ConfigError

#: Methods that need data from the recipe (calibration or gradients) besides the training steps.
DATA_METHODS = ("quantize:int8-static", "quantize:w8a8", "quantize:int8-awq", "quantize:int4-awq",
                "quantize:int8-gptq", "quantize:int4-gptq", "prune:wanda",
                "prune:layers-angular")


@dataclass(frozen=True)
class RecipeStep:
    """One step: its name (``prune:structured``, ``finetune`` ...) and its validated config."""

    name: str
    config: Any

    @property
    def trains(self) -> bool:
        return self.name in TRAINING_STEPS

    @property
    def quantizes(self) -> bool:
        return self.name.startswith("quantize:")

    @property
    def needs_data(self) -> bool:
        return self.trains or self.name in DATA_METHODS or getattr(self.config, "importance", None) == "taylor"

    def text(self) -> str:
        """``name,key=value`` with the parameters that differ from the defaults."""
        defaults = type(self.config)()
        preset = METHODS[self.name].preset if self.name in METHODS else {}
        method_defaults = METHODS[self.name].defaults if self.name in METHODS else {}
        changed = [
            f"{f.name}={getattr(self.config, f.name)}"
            for f in dataclasses.fields(self.config)
            if f.name not in preset
            and getattr(self.config, f.name) != method_defaults.get(f.name, getattr(defaults, f.name, None))
        ]
        if self.trains:
            return self.name + (":" + ",".join(changed) if changed else "")
        return ",".join([self.name, *changed])


@dataclass(frozen=True)
class Recipe:
    steps: tuple[RecipeStep, ...]

    @property
    def text(self) -> str:
        return "; ".join(step.text() for step in self.steps)

    @property
    def needs_data(self) -> bool:
        return any(step.needs_data for step in self.steps)

    def with_backend(self, backend: str) -> Recipe:
        """The same recipe with ``backend`` set on the quantization step that has one."""
        steps = []
        for step in self.steps:
            if step.quantizes and hasattr(step.config, "backend"):
                step = RecipeStep(step.name, dataclasses.replace(step.config, backend=backend))
            steps.append(step)
        return Recipe(tuple(steps))


def valid_step_names() -> list[str]:
    return [*METHODS, *TRAINING_STEPS]


def parse_step(text: str) -> RecipeStep:
    """``prune:structured,amount=0.3`` or ``finetune:epochs=1,lr=3e-5`` (training steps take their
    parameters after the colon, as the issue's examples write them)."""
    text = text.strip()
    head, colon, rest = text.partition(":")
    if head.strip() in TRAINING_STEPS and colon:
        text = f"{head.strip()},{rest}"
    parts = [p.strip() for p in text.split(",")]
    name = parts[0]
    if name in TRAINING_STEPS:
        cls = TRAINING_STEPS[name]
        return RecipeStep(name, cls(**parse_assignments(name, cls, parts[1:])))
    if name not in METHODS:
        raise ConfigError(f"unknown recipe step '{name}'; valid steps: {', '.join(valid_step_names())}")
    config = parse_method(text)
    return RecipeStep(method_name(config), config)


def _step_from_mapping(item: dict[str, Any]) -> RecipeStep:
    if len(item) != 1:
        raise ConfigError(f"a recipe step is one 'name: {{parameters}}' entry, got keys {', '.join(map(str, item))}")
    name, params = next(iter(item.items()))
    params = params or {}
    if not isinstance(params, dict):
        raise ConfigError(f"recipe step '{name}': parameters must be a mapping, got {params!r}")
    if name in TRAINING_STEPS:
        items = [f"{k}={v}" for k, v in params.items()]
        cls = TRAINING_STEPS[name]
        return RecipeStep(name, cls(**parse_assignments(name, cls, items)))
    if name not in METHODS:
        raise ConfigError(f"unknown recipe step '{name}'; valid steps: {', '.join(valid_step_names())}")
    items = [f"{k}={v}" for k, v in params.items()]
    config = make_config(name, **parse_assignments(name, _config_class(name), items, tuple(METHODS[name].preset)))
    return RecipeStep(name, config)


def _config_class(name: str) -> type:
    from steelyard.compression.registry import config_class

    return config_class(name)


def check_order(steps: list[RecipeStep]) -> None:
    if not steps:
        raise ConfigError(f"the recipe is empty; give steps such as 'prune:structured,amount=0.3; "
                          f"quantize:int8-dynamic' (valid steps: {', '.join(valid_step_names())})")
    quantize = [i for i, s in enumerate(steps) if s.quantizes]
    if len(quantize) > 1:
        raise ConfigError(f"the recipe quantizes twice ({steps[quantize[0]].name}, {steps[quantize[1]].name}); "
                          "keep one quantization step")
    if quantize and quantize[0] != len(steps) - 1:
        after = steps[quantize[0] + 1].name
        raise ConfigError(
            f"{steps[quantize[0]].name} must be the last step ({after} follows it): a quantized model can no "
            "longer be trained, pruned or factorized; use finetune:qat=true before it to train for quantization"
        )


def _load_yaml(path: Path) -> list[Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict):
        data = data.get("steps")
    if not isinstance(data, list):
        raise ConfigError(f"recipe {path} must hold a list of steps (under 'steps:')")
    return data


def parse_recipe(spec: str | Path) -> Recipe:
    """A recipe from ``"step; step; ..."`` text or from a ``.yaml`` / ``.yml`` file."""
    text = str(spec).strip()
    path = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or (path.is_file() and ":" not in path.name):
        if not path.is_file():
            raise ConfigError(f"recipe file {path} does not exist")
        items = _load_yaml(path)
    else:
        items = [part for part in text.split(";") if part.strip()]
    steps: list[RecipeStep] = []
    for item in items:
        if isinstance(item, str):
            steps.append(parse_step(item))
        elif isinstance(item, dict):
            steps.append(_step_from_mapping(item))
        else:
            raise ConfigError(f"a recipe step must be text or a mapping, got {item!r}")
    check_order(steps)
    return Recipe(tuple(steps))
