"""What a comparison runs on: one harness for every candidate, the constraints and the serving volume."""

from __future__ import annotations

from dataclasses import dataclass, field

from steelyard.config_values import normalise_tuples
from steelyard.errors import ConfigError
from steelyard.models.tasks import InputSpec
from steelyard.units import Bytes, Seconds, Usd

#: Objectives a comparison can rank on: name → direction ("max" is better when larger).
OBJECTIVES: dict[str, str] = {
    "accuracy": "max",
    "latency": "min",
    "cost_per_1k": "min",
    "memory": "min",
    "throughput": "max",
    "energy": "min",
    "lifetime_cost": "min",
    "storage": "min",
    "parameters": "min",
}
ALIASES = {"cost": "cost_per_1k", "lifetime": "lifetime_cost", "params": "parameters", "size": "storage",
           "score": "accuracy"}
LABELS = {
    "accuracy": "accuracy",
    "latency": "latency",
    "cost_per_1k": "$ / 1k inferences",
    "memory": "memory",
    "throughput": "throughput",
    "energy": "energy / inference",
    "lifetime_cost": "lifetime cost",
    "storage": "storage",
    "parameters": "parameters",
}


def objective_name(text: str) -> str:
    key = text.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in OBJECTIVES:
        raise ConfigError(f"unknown objective '{text}'; choose from: {', '.join([*OBJECTIVES, *ALIASES])}")
    return key


@dataclass(frozen=True)
class Constraints:
    """Hard limits a recommended (model, hardware) option must meet; None: no limit."""

    max_latency: Seconds | None = None
    max_memory: Bytes | None = None
    min_accuracy: float | None = None
    max_cost_per_1k: Usd | None = None

    def __post_init__(self) -> None:
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise ConfigError(f"min accuracy must lie in [0, 1], got {self.min_accuracy}")
        for name in ("max_latency", "max_memory", "max_cost_per_1k"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name.replace('_', ' ')} cannot be negative, got {value}")

    def as_list(self) -> list[tuple[str, str, float, str]]:
        """(metric, kind, bound, label) for each limit that is set."""
        out = []
        if self.max_latency is not None:
            out.append(("latency", "max", float(self.max_latency), "max latency"))
        if self.max_memory is not None:
            out.append(("memory", "max", float(self.max_memory), "max memory"))
        if self.min_accuracy is not None:
            out.append(("accuracy", "min", float(self.min_accuracy), "min accuracy"))
        if self.max_cost_per_1k is not None:
            out.append(("cost_per_1k", "max", float(self.max_cost_per_1k), "max cost per 1k"))
        return out


@dataclass(frozen=True)
class CompareConfig:
    """One harness for every candidate (same batch, sequence length, dtype, threads, data)."""

    hardware: tuple[str, ...] = ("local", "t4", "a100-80gb")
    config_only: bool = False
    task: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    inputs: InputSpec = field(default_factory=InputSpec)
    #: torch intra-op threads, fixed for every timing (None: the current count, then recorded).
    threads: int | None = None
    warmup: int = 3
    runs: int = 20
    #: Time the candidates in rounds (A B A B ...) so drift hits them alike.
    interleave: bool = True
    data: str | None = None
    split: str = "test"
    #: Metrics to evaluate (empty: the task's defaults); the first is the headline ("accuracy") column.
    metrics: tuple[str, ...] = ()
    max_examples: int | None = None
    #: Where to load the tokenizer from, for models saved without one.
    tokenizer: str | None = None
    constraints: Constraints = field(default_factory=Constraints)
    #: Pareto objectives, the first also the recommendation's primary one (accuracy dropped without data).
    objectives: tuple[str, ...] = ("accuracy", "latency", "cost_per_1k")
    requests_per_day: float = 10_000.0
    days: float = 365.0
    #: Fine-tuning budget for the lifetime cost, in tokens (samples for vision); 0: no fine-tuning.
    finetune_tokens: float = 10e6
    utilization: float = 0.4
    finetune_dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        from steelyard.models.loading import float_dtype

        object.__setattr__(self, "dtype", float_dtype(self.dtype))  # fp16, bf16, half ... as aliases
        object.__setattr__(self, "finetune_dtype", float_dtype(self.finetune_dtype))
        normalise_tuples(self, "hardware", "metrics", "objectives")  # hardware="t4" is ("t4",)
        if not self.hardware:
            raise ConfigError("compare needs at least one hardware target")
        if self.runs < 1 or self.warmup < 0:
            raise ConfigError("runs must be at least 1 and warmup at least 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.requests_per_day < 0 or self.days <= 0 or self.finetune_tokens < 0:
            raise ConfigError("requests per day and fine-tuning tokens must be >= 0 and days > 0")
        if not 0 < self.utilization <= 1:
            raise ConfigError(f"utilization must be in (0, 1], got {self.utilization}")
        if self.data and self.config_only:
            raise ConfigError("--data needs real weights to evaluate; drop --config-only")
        if self.constraints.min_accuracy is not None and not self.data:
            raise ConfigError("--min-accuracy needs --data (accuracy is measured on a dataset)")
        if self.max_examples is not None and self.max_examples < 1:
            raise ConfigError(f"max examples must be at least 1, got {self.max_examples}")
        for name in self.objectives:
            objective_name(name)
        if not self.objectives:
            raise ConfigError("at least one objective is needed")
