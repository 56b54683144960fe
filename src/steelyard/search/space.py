"""Search spaces: named parameters with ranges or choices, and an optional recipe template.

A space comes from YAML (``--space space.yaml``) or a dict::

    params:
      depth:     {type: float, low: 0.0, high: 0.5, step: 0.25}   # share of layers dropped
      ffn:       {type: float, low: 0.0, high: 0.6, step: 0.2}
      epochs:    {type: int, low: 0, high: 2}
      precision: {type: categorical, choices: [none, int8-dynamic]}
    recipe: "prune:layers,amount={depth}; prune:structured,amount={ffn}; finetune:epochs={epochs}; quantize:{precision}"

The recipe template turns a trial's parameters into a compression recipe: each ``;``-separated
step has its ``{name}`` placeholders filled in, and a step whose placeholders are *all* off
(``none``, 0, false, empty) is dropped, so ``quantize:{precision}`` with ``precision: none``
means "no quantization". Steps without placeholders are always kept.

Everything is checked when the space is built, before any study is touched: an empty space, a
range whose low is above its high, a log range that reaches zero, empty choices, an unknown
type or key, and a placeholder that names no parameter are each a one-line ConfigError.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError

TYPES = ("int", "float", "categorical", "bool")
_KEYS = {"type", "low", "high", "step", "log", "choices"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Values that switch a recipe step off.
OFF = (None, 0, 0.0, False, "", "none", "off", "false", "no")


@dataclass(frozen=True)
class Param:
    """One dimension of the space."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        where = f"search space parameter '{self.name}'"
        if not _NAME.match(self.name):
            raise ConfigError(f"{where}: names are letters, digits and _ (used as {{{self.name}}} in the recipe)")
        if self.type not in TYPES:
            raise ConfigError(f"{where}: unknown type '{self.type}'; valid types: {', '.join(TYPES)}")
        if self.type in ("int", "float"):
            self._check_range(where)
        elif self.type == "categorical":
            if not self.choices:
                raise ConfigError(f"{where}: 'choices' is empty; give at least one value")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ConfigError(f"{where}: duplicated choices {list(self.choices)}")
            bad = [c for c in self.choices if not isinstance(c, (str, int, float, bool)) and c is not None]
            if bad:
                raise ConfigError(f"{where}: choices must be text, numbers, booleans or null, got {bad[0]!r}")

    def _check_range(self, where: str) -> None:
        if self.low is None or self.high is None:
            raise ConfigError(f"{where}: type {self.type} needs 'low' and 'high'")
        for key in ("low", "high", "step"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ConfigError(f"{where}: '{key}' must be a finite number, got {value!r}")
            if self.type == "int" and value is not None and float(value) != int(value):
                raise ConfigError(f"{where}: type int needs a whole '{key}', got {value!r}")
        if self.low > self.high:
            raise ConfigError(f"{where}: low {self.low} is above high {self.high}")
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"{where}: step must be positive, got {self.step}")
        if self.log and self.step is not None and not (self.type == "int" and self.step == 1):
            raise ConfigError(f"{where}: a log range cannot have a step")
        if self.log and self.low <= 0:
            raise ConfigError(f"{where}: a log range must stay above zero, got low {self.low}")

    @classmethod
    def from_spec(cls, name: str, spec: Any) -> Param:
        """From ``{type: ..., low: ..., ...}``, a bare list (categorical) or a single value (fixed)."""
        if isinstance(spec, list):
            return cls(name, "categorical", choices=tuple(spec))
        if not isinstance(spec, Mapping):
            return cls(name, "categorical", choices=(spec,))
        unknown = sorted(set(map(str, spec)) - _KEYS)
        if unknown:
            raise ConfigError(f"search space parameter '{name}': unknown key {', '.join(unknown)}; "
                              f"valid keys: {', '.join(sorted(_KEYS))}")
        kind = str(spec.get("type") or ("categorical" if "choices" in spec else ""))
        if not kind:
            raise ConfigError(f"search space parameter '{name}': give a type ({', '.join(TYPES)})")
        choices = spec.get("choices")
        if kind != "categorical" and choices is not None:
            raise ConfigError(f"search space parameter '{name}': 'choices' belongs to type categorical, not {kind}")
        if kind in ("categorical", "bool") and any(k in spec for k in ("low", "high", "step", "log")):
            raise ConfigError(f"search space parameter '{name}': low/high/step/log belong to int and float, "
                              f"not {kind}")
        if kind == "categorical" and not isinstance(choices, list):
            raise ConfigError(f"search space parameter '{name}': 'choices' must be a list, got {choices!r}")
        return cls(name, kind, spec.get("low"), spec.get("high"), spec.get("step"), bool(spec.get("log", False)),
                   tuple(choices or ()))

    def to_spec(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        if self.type == "bool":
            return {"type": "bool"}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out

    def suggest(self, trial: Any) -> Any:
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),  # type: ignore[arg-type]
                                     step=int(self.step or 1), log=self.log)
        if self.type == "float":
            return trial.suggest_float(self.name, float(self.low), float(self.high),  # type: ignore[arg-type]
                                       step=self.step, log=self.log)
        if self.type == "bool":
            return trial.suggest_categorical(self.name, (False, True))
        return trial.suggest_categorical(self.name, self.choices)

    def ends(self) -> tuple[Any, Any]:
        """The first and the last value (low / high, first / last choice)."""
        if self.type == "bool":
            return False, True
        if self.type == "categorical":
            return self.choices[0], self.choices[-1]
        cast = int if self.type == "int" else float
        return cast(self.low), cast(self.high)  # type: ignore[arg-type]

    def grid(self) -> list[Any]:
        """Every value, for grid search (a float range needs a step)."""
        if self.type == "bool":
            return [False, True]
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            if self.log:
                raise ConfigError(f"grid search cannot enumerate the log range of '{self.name}'; use a step")
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))  # type: ignore[arg-type]
        if self.step is None:
            raise ConfigError(f"grid search needs a step for the float parameter '{self.name}'")
        n = math.floor((self.high - self.low) / self.step + 1e-9)  # type: ignore[operator]
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]  # type: ignore[operator]


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    recipe: str | None = None
    #: Where the space came from (a file path), for messages.
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f" in {self.source}" if self.source else ""
        if not self.params:
            raise ConfigError(f"the search space{where} is empty: give at least one parameter under 'params:'")
        if self.recipe is not None:
            if not str(self.recipe).strip():
                raise ConfigError(f"the recipe template{where} is empty")
            names = {p.name for p in self.params}
            unknown = sorted(set(_PLACEHOLDER.findall(self.recipe)) - names)
            if unknown:
                raise ConfigError(f"the recipe template{where} uses {', '.join('{' + u + '}' for u in unknown)}, "
                                  f"which is not a parameter; parameters: {', '.join(sorted(names))}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> SearchSpace:
        where = f" {source}" if source else ""
        if not isinstance(data, Mapping):
            raise ConfigError(f"the search space{where} must be a mapping with 'params:' (and optionally 'recipe:')")
        unknown = sorted(set(map(str, data)) - {"params", "recipe"})
        if unknown:
            raise ConfigError(f"the search space{where} has unknown key {', '.join(unknown)}; valid keys: params, "
                              "recipe")
        params = data.get("params") or {}
        if isinstance(params, list):  # [{name: depth, type: ...}, ...]
            try:
                params = {str(p["name"]): {k: v for k, v in p.items() if k != "name"} for p in params}
            except (TypeError, KeyError):
                raise ConfigError(f"the search space{where}: each item of a 'params' list needs a 'name'") from None
        if not isinstance(params, Mapping):
            raise ConfigError(f"the search space{where}: 'params' must map names to ranges, got {params!r}")
        recipe = data.get("recipe")
        if recipe is not None and not isinstance(recipe, str):
            raise ConfigError(f"the search space{where}: 'recipe' must be text such as 'prune:layers,amount={{d}}'")
        return cls(tuple(Param.from_spec(str(k), v) for k, v in params.items()), recipe, source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        import yaml

        path = Path(path).expanduser()
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read the search space {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"the search space {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if data is None:
            raise ConfigError(f"the search space {path} is empty: give at least one parameter under 'params:'")
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": {p.name: p.to_spec() for p in self.params}}
        if self.recipe is not None:
            out["recipe"] = self.recipe
        return out

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask ``trial`` (an Optuna trial) for a value of every parameter."""
        return {p.name: p.suggest(trial) for p in self.params}

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions of the parameters (to add or compare trials)."""
        import optuna

        class _Probe:
            def __init__(self) -> None:
                self.found: dict[str, Any] = {}

            def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
                self.found[name] = optuna.distributions.IntDistribution(low, high, log=log, step=step)
                return low

            def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                              log: bool = False) -> float:
                self.found[name] = optuna.distributions.FloatDistribution(low, high, log=log, step=step)
                return low

            def suggest_categorical(self, name: str, choices: Any) -> Any:
                self.found[name] = optuna.distributions.CategoricalDistribution(tuple(choices))
                return choices[0]

        probe = _Probe()
        self.suggest(probe)
        return probe.found

    def grid(self) -> dict[str, list[Any]]:
        return {p.name: p.grid() for p in self.params}

    def size(self) -> int | None:
        """Number of distinct points, or None when a float range has no step."""
        try:
            return math.prod(len(v) for v in self.grid().values())
        except ConfigError:
            return None

    def recipe_text(self, values: Mapping[str, Any]) -> str | None:
        """The recipe for one point (None without a template); "" when every step is off."""
        if self.recipe is None:
            return None
        steps = []
        for step in self.recipe.split(";"):
            step = step.strip()
            if not step:
                continue
            names = _PLACEHOLDER.findall(step)
            if names and all(is_off(values.get(n)) for n in names):
                continue
            steps.append(_PLACEHOLDER.sub(lambda m: render_value(values.get(m.group(1))), step))
        return "; ".join(steps)


def is_off(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in OFF
    if isinstance(value, bool):
        return not value
    return value is None or (isinstance(value, (int, float)) and value == 0)


def render_value(value: Any) -> str:
    """How a value is written into a recipe: ``0.25``, ``2``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
