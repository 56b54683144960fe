"""Create or resume a named study, and refuse to mix another model into it.

A study records what it searches in Optuna user attributes: the model (its source and a
fingerprint of its files), the objectives, the space, the data and the selection rule. The same
command resumes the study; a command for another model, other objectives, another space or other
data is refused with a one-line ConfigError before any trial is added, so the study stays intact.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError
from steelyard.search.pareto import Objective
from steelyard.search.space import SearchSpace

SAMPLERS = ("tpe", "nsga2", "random", "grid")
_DIRECTIONS = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
#: Weight files hashed for the fingerprint: head and tail of each (a full hash of GBs is too slow).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".pth", ".gguf")
_CHUNK = 1 << 20


def parse_objectives(text: str, valid: tuple[str, ...] | None = None) -> tuple[Objective, ...]:
    """``accuracy:max,latency:min`` → objectives; ``valid`` restricts the names (CLI)."""
    out: list[Objective] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        name, _, direction = part.partition(":")
        name, direction = name.strip(), direction.strip().lower()
        if not _NAME.match(name):
            raise ConfigError(f"objective '{part}': a name such as accuracy or latency, then :max or :min")
        if direction not in _DIRECTIONS:
            raise ConfigError(f"objective '{part}': say whether to maximize or minimize it, e.g. {name}:max or "
                              f"{name}:min")
        if valid is not None and name not in valid:
            raise ConfigError(f"unknown objective '{name}'; valid objectives: {', '.join(valid)}")
        if any(o.name == name for o in out):
            raise ConfigError(f"objective '{name}' is given twice")
        out.append(Objective(name, _DIRECTIONS[direction]))  # type: ignore[arg-type]
    if not out:
        raise ConfigError("give at least one objective, e.g. --objectives accuracy:max,latency:min")
    return tuple(out)


def objectives_text(objectives: tuple[Objective, ...] | list[Objective]) -> str:
    return ",".join(f"{o.name}:{o.direction}" for o in objectives)


def model_fingerprint(source: str) -> str:
    """Content of a local model (config + weight heads/tails), else the id itself (hub, factory)."""
    digest = hashlib.sha256()
    path = Path(source).expanduser()
    files: list[Path] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file()
                       and (p.name == "config.json" or p.suffix in _WEIGHT_SUFFIXES))
    elif path.is_file():
        files = [path]
    if not files:
        digest.update(b"id:" + source.strip().encode())
    for f in files:
        digest.update(f.name.encode() + str(f.stat().st_size).encode())
        with f.open("rb") as fh:
            if f.suffix in _WEIGHT_SUFFIXES and f.stat().st_size > 2 * _CHUNK:
                digest.update(fh.read(_CHUNK))
                fh.seek(-_CHUNK, 2)
                digest.update(fh.read(_CHUNK))
            else:
                digest.update(fh.read())
    return "sha256:" + digest.hexdigest()[:16]


@dataclass(frozen=True)
class StudySpec:
    """What a study searches; stored with it so a resume can check it is the same search."""

    name: str
    model: str
    fingerprint: str
    objectives: tuple[Objective, ...]
    space: dict[str, Any]
    data: str | None = None
    kind: str = "search"
    #: How ``study show`` picks the answer (see :mod:`steelyard.search.summary`).
    selection: dict[str, Any] = field(default_factory=dict)
    #: Anything else a worker needs to resume (recipe options, cost objective ...), not checked.
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"study name '{self.name}': use letters, digits, '.', '_' and '-'")
        if not self.objectives:
            raise ConfigError("a study needs at least one objective")

    def attrs(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "model": self.model, "model_fingerprint": self.fingerprint,
            "objectives": [[o.name, o.direction] for o in self.objectives], "space": self.space, "data": self.data,
            "selection": self.selection, "settings": self.settings,
        }

    @classmethod
    def from_attrs(cls, name: str, attrs: Mapping[str, Any], directions: list[str] | None = None) -> StudySpec:
        objectives = tuple(Objective(str(n), str(d)) for n, d in attrs.get("objectives") or ())  # type: ignore[arg-type]
        if not objectives and directions:  # a study made by plain Optuna, not by steelyard
            objectives = tuple(Objective(f"value{i}", d) for i, d in enumerate(directions))  # type: ignore[arg-type]
        return cls(name, str(attrs.get("model", "?")), str(attrs.get("model_fingerprint", "?")), objectives,
                   dict(attrs.get("space") or {}), attrs.get("data"), str(attrs.get("kind", "search")),
                   dict(attrs.get("selection") or {}), dict(attrs.get("settings") or {}))

    @property
    def search_space(self) -> SearchSpace:
        return SearchSpace.from_dict(self.space, f"study {self.name}")


def _directions(spec: StudySpec) -> list[str]:
    return ["maximize" if o.direction == "max" else "minimize" for o in spec.objectives]


def check_same_search(stored: StudySpec, wanted: StudySpec) -> None:
    """Raise ConfigError when ``wanted`` is not the search ``stored`` was started for.

    The selection rule is not compared: it only picks among finished trials, so a resume may
    change it (``optimize --max-drop``)."""
    name = stored.name
    if stored.fingerprint != wanted.fingerprint:
        raise ConfigError(f"study '{name}' belongs to model {stored.model} ({stored.fingerprint}), not {wanted.model} "
                          f"({wanted.fingerprint}); pick another --study name")
    if stored.kind != wanted.kind:
        raise ConfigError(f"study '{name}' was started by 'steelyard {stored.kind}', not 'steelyard {wanted.kind}'; "
                          "pick another --study name")
    if [(o.name, o.direction) for o in stored.objectives] != [(o.name, o.direction) for o in wanted.objectives]:
        raise ConfigError(f"study '{name}' optimizes {objectives_text(stored.objectives)}, not "
                          f"{objectives_text(wanted.objectives)}; pick another --study name")
    if stored.space != wanted.space:
        raise ConfigError(f"study '{name}' was started with another search space; resume it with the same space "
                          "or pick another --study name")
    if (stored.data or None) != (wanted.data or None):
        raise ConfigError(f"study '{name}' was started on data {stored.data}, not {wanted.data}; pick another "
                          "--study name")
    if stored.settings != wanted.settings:
        diff = sorted(k for k in {*stored.settings, *wanted.settings}
                      if stored.settings.get(k) != wanted.settings.get(k))
        shown = ", ".join(f"{k} {stored.settings.get(k)!r} (now {wanted.settings.get(k)!r})" for k in diff[:3])
        raise ConfigError(f"study '{name}' was measured with other settings: {shown}; resume it with the same "
                          "options or pick another --study name")


def study_names(storage: Any) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def open_study(storage: Any, spec: StudySpec, sampler: Any = None, pruner: Any = None) -> Any:
    """Create the study, or load it after checking it is the same search (see :func:`check_same_search`)."""
    import optuna

    try:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                    directions=_directions(spec), load_if_exists=True)
    attrs = study.user_attrs
    if "model_fingerprint" in attrs:
        check_same_search(StudySpec.from_attrs(spec.name, attrs), spec)
        # The selection rule (e.g. --max-drop) only picks among finished trials: the latest command's wins.
        if attrs.get("selection") != spec.selection:
            study.set_user_attr("selection", spec.selection)
        return study
    if study.get_trials(deepcopy=False):
        raise ConfigError(f"study '{spec.name}' was not made by steelyard (it has no model record); pick another "
                          "--study name")
    if [d.name.lower() for d in study.directions] != _directions(spec):
        raise ConfigError(f"study '{spec.name}' has other directions; pick another --study name")
    # A new study (or one another worker has just created): write what it searches. Two workers
    # starting at once write the same values.
    # The fingerprint goes last: a worker that sees it sees every other attribute too.
    attrs_out = spec.attrs()
    fingerprint = attrs_out.pop("model_fingerprint")
    for key, value in attrs_out.items():
        study.set_user_attr(key, value)
    study.set_user_attr("model_fingerprint", fingerprint)
    return study


def load_study(storage: Any, name: str) -> tuple[Any, StudySpec]:
    """An existing study and its spec; ConfigError naming the studies there when it is missing."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = study_names(storage)
        known = f"; studies there: {', '.join(names)}" if names else "; the storage holds no study"
        raise ConfigError(f"no study named '{name}'{known}") from None
    directions = ["max" if d.name == "MAXIMIZE" else "min" for d in study.directions]
    return study, StudySpec.from_attrs(name, study.user_attrs, directions)


def make_sampler(name: str, space: SearchSpace, n_objectives: int, n_trials: int, seed: int | None = None) -> Any:
    """Sampler by name. TPE (the default) also handles several objectives, and learns from few trials,
    where NSGA-II spends its first generation (population) on random points."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                          n_startup_trials=min(10, max(3, n_trials // 4)))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(4, n_trials // 4)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    raise ConfigError(f"unknown sampler '{name}'; valid samplers: {', '.join(SAMPLERS)}")


def make_pruner(n_objectives: int) -> Any:
    """Median pruning of a single objective from the values a trial reports; multi-objective
    studies rely on the objective's own rule (see :mod:`steelyard.search.runner`)."""
    import optuna

    if n_objectives == 1:
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    return optuna.pruners.NopPruner()
