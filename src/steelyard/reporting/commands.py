"""Reproduce commands: the CLI call that runs a stored result again, built from its config.

One generic builder walks a table of :class:`Flag` rows (config field → CLI option, in the
order the command reads best) and writes each option whose value differs from the config
class's default, plus the ones marked ``always`` (the harness and the serving volume, so the
command says them even when they are the defaults). :data:`COMPARE_FLAGS` covers every field of
:class:`~steelyard.comparison.config.CompareConfig` except those in :data:`COMPARE_UNFLAGGED`
(a test checks that a new field is added to one or the other).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steelyard.comparison.config import CompareConfig
from steelyard.reporting.formatting import fmt_seconds
from steelyard.serialize import to_dict


def duration_text(seconds: float) -> str:
    """50 ms → ``50ms`` (what ``--max-latency`` parses back)."""
    return fmt_seconds(float(seconds)).replace(" ", "").replace("µs", "us")


def bytes_text(n: float) -> str:
    """2**30 → ``1GiB``; 4e9 → ``4GB``; an odd count in plain bytes."""
    for unit, size in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size and (n / size) == round(n / size, 3):
            return f"{n / size:g}{unit}"
    return f"{n:.0f}B"


def count_text(n: float) -> str:
    """10_000 → ``10k``; 1e7 → ``10M``."""
    for suffix, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size and (n / size) == round(n / size, 3):
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Flag:
    """One CLI option and the config field (dotted path into the config) it sets."""

    path: str
    option: str
    #: Written even at its default value.
    always: bool = False
    #: Only when this other field is truthy ("data"), or falsy with a leading "!" ("!config_only").
    when: str | None = None
    #: How the value is written (default: ``:g`` for floats, comma-joined sequences, ``str``).
    text: Callable[[Any], str] = _plain
    #: A sequence written as one option per item (``--backend a --backend b``); else comma-joined.
    repeat: bool = False
    #: A local path: written absolute when the run recorded where it pointed.
    path_like: bool = False


def _fields(data: Any, prefix: str = "") -> dict[str, Any]:
    """A config's ``to_dict`` → dotted field paths (nested configs only; lists stay values)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_fields(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_fields(config_class: type, prefix: str = "") -> list[str]:
    """Every leaf field of a config dataclass as a dotted path (what a flag table must cover)."""
    return list(_fields(to_dict(config_class()), prefix))


def _applies(flag: Flag, values: Mapping[str, Any]) -> bool:
    if flag.when is None:
        return True
    negate = flag.when.startswith("!")
    present = bool(values.get(flag.when.lstrip("!")))
    return present != negate


def command_line(program: Sequence[str], config: Mapping[str, Any], defaults: Mapping[str, Any],
                 flags: Sequence[Flag], paths: Mapping[str, str] | None = None) -> str:
    """``program`` then every option of ``flags`` that ``config`` sets; one shell-quoted line.

    ``config`` and ``defaults`` are configs in their stored form (:func:`steelyard.serialize.to_dict`),
    so a command is rebuilt the same way from a result in memory and from a run in the store.
    """
    values, defaults = _fields(dict(config)), _fields(dict(defaults))
    paths = paths or {}
    args = [*program]
    for flag in flags:
        value = values.get(flag.path, defaults.get(flag.path))  # a field newer than the stored run: its default
        if not _applies(flag, values) or value is None or value == [] or value == ():
            continue
        if value == defaults.get(flag.path) and not flag.always:
            continue
        if isinstance(value, bool):
            name = flag.option.removeprefix("--")
            args.append(f"--{name}" if value else f"--no-{name}")
            continue
        items = value if flag.repeat else [value]
        for item in items:
            text = paths.get(item, item) if flag.path_like else item
            args += [flag.option, flag.text(text)]
    return shlex.join(args)


#: `steelyard compare` options, in the order the command reads: harness, timing, data, limits, volume.
COMPARE_FLAGS: tuple[Flag, ...] = (
    Flag("hardware", "--hardware", always=True),
    Flag("inputs.batch_size", "--batch-size", always=True),
    Flag("inputs.seq_len", "--seq-len", always=True),
    Flag("inputs.image_size", "--image-size"),
    Flag("inputs.decoder_len", "--decoder-len"),
    Flag("inputs.audio_seconds", "--audio-seconds"),
    Flag("task", "--task"),
    Flag("dtype", "--dtype"),
    Flag("device", "--device"),
    Flag("config_only", "--config-only"),
    Flag("runs", "--runs", always=True, when="!config_only"),
    Flag("warmup", "--warmup", always=True, when="!config_only"),
    Flag("threads", "--threads", when="!config_only"),
    Flag("interleave", "--interleave", when="!config_only"),
    Flag("data", "--data", path_like=True),
    Flag("split", "--split", always=True, when="data"),
    Flag("metrics", "--metrics", when="data"),
    Flag("tokenizer", "--tokenizer", when="data"),
    Flag("max_examples", "--max-examples", when="data"),
    Flag("constraints.max_latency", "--max-latency", text=duration_text),
    Flag("constraints.max_memory", "--max-memory", text=bytes_text),
    Flag("constraints.min_accuracy", "--min-accuracy"),
    Flag("constraints.max_cost_per_1k", "--max-cost-per-1k"),
    Flag("objectives", "--objectives", always=True),
    Flag("requests_per_day", "--requests-per-day", always=True, text=count_text),
    Flag("days", "--days", always=True),
    Flag("finetune_tokens", "--finetune-tokens", always=True, text=count_text),
    Flag("utilization", "--utilization", always=True),
)

#: CompareConfig fields with no `steelyard compare` option, and why.
COMPARE_UNFLAGGED = {
    "finetune_dtype": "the lifetime cost assumes bfloat16 training; the CLI offers no choice",
}


def compare_command(comp: Any) -> str:
    """The `steelyard compare` call that runs :class:`~steelyard.comparison.result.Comparison` ``comp`` again."""
    paths = getattr(comp, "paths", None) or {}
    models = [paths.get(c.model, c.model) for c in comp.candidates]
    return command_line(["steelyard", "compare", *models], to_dict(comp.config), to_dict(CompareConfig()),
                        COMPARE_FLAGS, paths)


#: `steelyard profile` options over the stored ``{"LoadConfig": ..., "ProfileConfig": ...}`` of a profile run.
PROFILE_FLAGS: tuple[Flag, ...] = (
    Flag("LoadConfig.task", "--task"),
    Flag("LoadConfig.inputs.batch_size", "--batch-size", always=True),
    Flag("LoadConfig.inputs.seq_len", "--seq-len", always=True),
    Flag("LoadConfig.inputs.image_size", "--image-size"),
    Flag("LoadConfig.inputs.decoder_len", "--decoder-len"),
    Flag("LoadConfig.inputs.audio_seconds", "--audio-seconds"),
    Flag("LoadConfig.dtype", "--dtype"),  # None: the config's own (config only), else float32
    Flag("LoadConfig.config_only", "--config-only"),
    Flag("LoadConfig.device", "--device"),
    Flag("LoadConfig.input_shapes", "--input-shape", repeat=True),
    Flag("LoadConfig.num_labels", "--num-labels"),
    Flag("LoadConfig.trust_remote_code", "--trust-remote-code"),
    Flag("ProfileConfig.hardware", "--hardware", always=True),
    Flag("ProfileConfig.runs", "--runs", always=True, when="!LoadConfig.config_only"),
    Flag("ProfileConfig.warmup", "--warmup", always=True, when="!LoadConfig.config_only"),
    Flag("ProfileConfig.threads", "--threads", when="!LoadConfig.config_only"),
    Flag("ProfileConfig.measure", "--measure", when="!LoadConfig.config_only"),
    Flag("ProfileConfig.causal_attention", "--causal-attention"),
    Flag("ProfileConfig.optimizer", "--optimizer"),
    Flag("ProfileConfig.generation.prompt_len", "--prompt-len", when="ProfileConfig.generation.new_tokens"),
    Flag("ProfileConfig.generation.new_tokens", "--new-tokens"),
    Flag("ProfileConfig.generation.kv_cache", "--kv-cache", when="ProfileConfig.generation.new_tokens"),
    Flag("ProfileConfig.generation.kv_group_size", "--kv-group-size", when="ProfileConfig.generation.new_tokens"),
    Flag("ProfileConfig.generation.kv_residual_length", "--kv-residual-length",
         when="ProfileConfig.generation.new_tokens"),
)


def profile_command(model: str, config: Mapping[str, Any]) -> str | None:
    """The `steelyard profile` call that made a stored profile run (None without its two configs)."""
    from steelyard.models.loading import LoadConfig
    from steelyard.profiling.generation_config import GenerationWorkload
    from steelyard.profiling.profile import ProfileConfig

    load, prof = config.get("LoadConfig"), config.get("ProfileConfig")
    if not isinstance(load, dict) or not isinstance(prof, dict):
        return None
    # a generation's own defaults (the float KV cache) are left out; its shape (--prompt-len) is always written
    generation = {k: v for k, v in to_dict(GenerationWorkload()).items() if k.startswith("kv_")}
    defaults = {"LoadConfig": to_dict(LoadConfig()), "ProfileConfig": {**to_dict(ProfileConfig()),
                                                                       "generation": generation}}
    return command_line(["steelyard", "profile", model], {"LoadConfig": load, "ProfileConfig": prof}, defaults,
                        PROFILE_FLAGS)


#: `steelyard finetune` options over the stored ``{"FinetuneConfig": ..., "DataOptions": ...}`` of a finetune run.
FINETUNE_FLAGS: tuple[Flag, ...] = (
    Flag("DataOptions.source", "--data", always=True, path_like=True),
    Flag("DataOptions.task", "--task"),
    Flag("DataOptions.text_column", "--text-column"),
    Flag("DataOptions.label_column", "--label-column"),
    Flag("DataOptions.image_column", "--image-column"),
    Flag("DataOptions.clean", "--clean"),
    Flag("DataOptions.max_train_examples", "--max-train-examples"),
    Flag("DataOptions.max_eval_examples", "--max-eval-examples"),
    Flag("DataOptions.val_fraction", "--val-fraction"),
    Flag("FinetuneConfig.epochs", "--epochs", always=True),
    Flag("FinetuneConfig.lr", "--lr", always=True),
    Flag("FinetuneConfig.batch_size", "--batch-size"),
    Flag("FinetuneConfig.optimizer", "--optimizer"),
    Flag("FinetuneConfig.weight_decay", "--weight-decay"),
    Flag("FinetuneConfig.warmup_ratio", "--warmup-ratio"),
    Flag("FinetuneConfig.max_grad_norm", "--max-grad-norm"),
    Flag("FinetuneConfig.patience", "--patience"),
    Flag("FinetuneConfig.target", "--target-metric"),
    Flag("FinetuneConfig.stop_at_target", "--stop-at-target", when="FinetuneConfig.target"),
    Flag("FinetuneConfig.eval_every", "--eval-every"),
    Flag("FinetuneConfig.max_steps", "--max-steps"),
    Flag("FinetuneConfig.max_length", "--max-length"),
    Flag("FinetuneConfig.freeze_encoder", "--freeze-encoder"),
    Flag("FinetuneConfig.augment", "--augment"),
    Flag("FinetuneConfig.nproc", "--nproc"),
    Flag("FinetuneConfig.device", "--device"),
    Flag("FinetuneConfig.tokenizer", "--tokenizer"),
    Flag("FinetuneConfig.seed", "--seed"),
    Flag("FinetuneConfig.lora_rank", "--lora-rank"),
    Flag("FinetuneConfig.lora_alpha", "--lora-alpha"),
    Flag("FinetuneConfig.lora_targets", "--lora-targets"),
)

#: `steelyard estimate` options over a stored estimate: its LoadConfig and its own settings ("estimate").
ESTIMATE_FLAGS: tuple[Flag, ...] = (
    Flag("estimate.tokens", "--tokens", always=True, text=count_text),
    Flag("estimate.hardware", "--hardware", always=True),
    Flag("estimate.utilization", "--utilization"),
    Flag("estimate.method", "--method"),
    Flag("estimate.dtype", "--dtype"),
    Flag("estimate.measure_step", "--measure-step"),
    Flag("LoadConfig.task", "--task"),
    Flag("LoadConfig.inputs.seq_len", "--seq-len", always=True),
    Flag("LoadConfig.inputs.batch_size", "--batch-size"),
    Flag("LoadConfig.inputs.image_size", "--image-size"),
    Flag("LoadConfig.inputs.decoder_len", "--decoder-len"),
    Flag("LoadConfig.inputs.audio_seconds", "--audio-seconds"),
)

#: `steelyard estimate`'s own defaults (the command's parameters, not a config class).
ESTIMATE_DEFAULTS = {"hardware": ["a100-80gb", "h100-sxm"], "utilization": 0.4, "method": "counted",
                     "dtype": "bfloat16", "measure_step": False}


def finetune_command(record: Any) -> str | None:
    """The `steelyard finetune` call that made a stored finetune run (None without its configs or output)."""
    from steelyard.data.options import DataOptions
    from steelyard.training.config import FinetuneConfig

    config = record.config
    train, data = config.get("FinetuneConfig"), config.get("DataOptions")
    result = (record.payload or {}).get("result") or {}
    if not isinstance(train, dict) or not isinstance(data, dict) or not result.get("output"):
        return None
    defaults = {"FinetuneConfig": to_dict(FinetuneConfig()), "DataOptions": to_dict(DataOptions(source=""))}
    return command_line(["steelyard", "finetune", record.model, "--output", str(result["output"])],
                        {"FinetuneConfig": train, "DataOptions": data}, defaults, FINETUNE_FLAGS)


def estimate_command(record: Any) -> str | None:
    """The `steelyard estimate` call that made a stored estimate (settings it did not store: their defaults)."""
    from steelyard.models.loading import LoadConfig

    load = record.config.get("LoadConfig")
    payload = record.payload or {}
    if not isinstance(load, dict) or "tokens" not in payload:
        return None
    own = dict(record.config.get("estimate") or {})
    own.setdefault("tokens", payload["tokens"])
    own.setdefault("hardware", [row["hardware"] for row in payload.get("rows", [])])
    if payload.get("method") in ("counted", "6ND"):
        own.setdefault("method", payload["method"])
    defaults = {"LoadConfig": to_dict(LoadConfig()), "estimate": ESTIMATE_DEFAULTS}
    return command_line(["steelyard", "estimate", record.model], {"LoadConfig": load, "estimate": own}, defaults,
                        ESTIMATE_FLAGS)


#: Kind → how a run of that kind is rebuilt from its config when it stored no command line (Python API runs).
REBUILDERS: dict[str, Callable[[Any], str | None]] = {
    "profile": lambda record: profile_command(record.model, record.config),
    "finetune": finetune_command,
    "estimate": estimate_command,
}

#: Every kind the store records, with the command that makes it (a test checks each has a reproduce command).
RUN_KINDS: dict[str, str] = {
    "profile": "profile", "estimate": "estimate", "evaluate": "evaluate", "finetune": "finetune",
    "distill": "distill", "compare-optimizers": "compare-optimizers", "data-needs": "data-needs",
    "comparison": "compare", "serving": "compare", "compression": "compress", "optimize": "optimize",
    "search": "search",
}


def reproduce_command(record: Any) -> str | None:
    """The command that runs a stored run again: the one it recorded, else one rebuilt from its config."""
    config = record.config if isinstance(record.config, dict) else {}
    command = config.get("command")
    if isinstance(command, str) and command.strip():
        return command
    rebuild = REBUILDERS.get(record.kind)
    return rebuild(record) if rebuild is not None else None
