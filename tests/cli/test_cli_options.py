"""Every command's options against the configs it builds: a config field without an option, or an
option that feeds no config field, fails here unless it is listed below as deliberate.

Also the option generator itself (:mod:`steelyard.cli.options`): type, default and help from the
field, the command's own overrides, and the config built from what was parsed.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from steelyard.cli.main import app
from steelyard.cli.options import Group, Opt, with_options
from steelyard.comparison.config import CompareConfig, Constraints
from steelyard.comparison.workload import ServingLimits
from steelyard.compression.recipe import RecipeOptions
from steelyard.data.options import DataOptions
from steelyard.distill.config import DistillConfig
from steelyard.hardware.settings import HardwareSettings
from steelyard.models.loading import LoadConfig
from steelyard.models.tasks import InputSpec
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.profile import ProfileConfig
from steelyard.profiling.training_cost import estimate_training
from steelyard.search.config import OptimizeConfig, SearchConfig
from steelyard.training.config import FinetuneConfig


def fields(*configs: Any) -> set[str]:
    out: set[str] = set()
    for config in configs:
        if dataclasses.is_dataclass(config):
            out |= {f.name for f in dataclasses.fields(config)}
        else:  # a verb whose keyword arguments are its config
            out |= set(inspect.signature(config).parameters)
    return out


#: Fields the command line leaves at their default on purpose.
TRAIN_ONLY = {"metric": "picked from the task", "eval_batch_size": "a memory knob, not a result",
              "text_augment": "structured; --augment turns the default on",
              "image_augment": "structured; --augment turns the default on",
              "backend": "auto picks gloo / nccl", "n_resamples": "1000 for every report",
              "progress": "a bar on a terminal"}
DATA = {"source": "data"}
STUDY = {"store_url": "the global --store"}
#: Options every command that writes a report has (cli/common.py), feeding no config.
SCRIPTING = {"quiet": "console only"}
#: ``--name`` / ``--tag`` of every command that records a run (one declaration: cli/run_options.py, RunLabels).
RUN_LABELS = {"name": "the run's name in the store", "tag": "the run's tags in the store"}

#: command → (its configs, option → field where the names differ, options that feed no config
#: field, fields without an option). The reasons are the documentation of each exception.
PAIRS: dict[str, tuple[tuple[Any, ...], dict[str, str], dict[str, str], dict[str, str]]] = {
    "finetune": ((FinetuneConfig, DataOptions), {"target_metric": "target", "data": "source"},
                 {"model": "argument", "output": "where to save", "overwrite": "saving", "json_out": "file",
                  "save": "store"}, TRAIN_ONLY),
    "distill": ((DistillConfig, FinetuneConfig, DataOptions), {"cache": "cache_teacher", "data": "source"},
                {"teacher": "model", "student": "model or spec", "output": "where to save", "overwrite": "saving",
                 "json_out": "file", "save": "store"},
                {**TRAIN_ONLY, "train": "built from the training options", "task": "the teacher's",
                 "target": "not for distillation", "stop_at_target": "not for distillation",
                 "freeze_encoder": "refused by DistillConfig", "augment": "refused by DistillConfig"}),
    "compare-optimizers": ((FinetuneConfig, DataOptions), {"target_metric": "target", "data": "source"},
                           {"model": "argument", "optimizers": "the ones compared", "lrs": "per optimizer",
                            "json_out": "file", "save": "store"},
                           {**TRAIN_ONLY, "optimizer": "--optimizers", "patience": "runs to the target",
                            "stop_at_target": "always stops there", "augment": "same data for every optimizer",
                            "nproc": "one process per run", "lora_rank": "full fine-tuning compared",
                            "lora_alpha": "no LoRA", "lora_targets": "no LoRA"}),
    "optimize": ((OptimizeConfig, DataOptions), {"data": "source"},
                 {"model": "argument", "json_out": "file", "save": "store"},
                 {**STUDY, "image_column": "text or images read with the default column"}),
    "search": ((SearchConfig, DataOptions), {"data": "source"},
               {"model": "argument", "json_out": "file", "save": "store"},
               {**STUDY, "image_column": "text or images read with the default column"}),
    "compress": ((RecipeOptions, DataOptions, HardwareSettings, GenerationWorkload),
                 {"data": "source", "decode_batch_sizes": "batch_sizes"},
                 {"model": "argument", "recipe": "the steps", "output": "where to save", "backend": "recipe step",
                  "hardware": "devices to project onto", "overwrite": "saving", "json_out": "file",
                  "save": "store"},
                 {"warmup": "fixed", "eval_batch_size": "memory knob", "n_resamples": "1000 for a report",
                  "progress": "a bar on a terminal", "measure_latency": "always timed",
                  "calibration_batches": "per quantization step", "image_column": "default column",
                  "serve": "set from --backend by backends.serve.route",
                  "generation": "--prompt-len, --new-tokens, --decode-batch-sizes",
                  "audio_seconds": "decoder-only LMs", "decode_samples": "profile's counting",
                  "compute_efficiency": "profile's projection", "memory_efficiency": "profile's projection",
                  "runs": "--rounds (interleaved)", "kv_cache": "profile --kv-cache (the cache is runtime state)",
                  "kv_group_size": "profile --kv-cache", "kv_residual_length": "profile --kv-cache"}),
    "compare": ((CompareConfig, InputSpec, Constraints, ServingLimits, HardwareSettings),
                {"weights": "config_only"},
                {"models": "arguments", "html": "file", "markdown": "file", "json_out": "file", "save": "store",
                 "workload": "parsed into a ServingWorkload"},
                {"inputs": "--batch-size, --seq-len, --image-size", "constraints": "--max-latency ...",
                 "finetune_dtype": "bfloat16 for the lifetime cost"}),
    "profile": ((ProfileConfig, LoadConfig, InputSpec, GenerationWorkload, HardwareSettings),
                {"weights": "config_only", "input_shape": "input_shapes"},
                {"model": "argument", "json_out": "file", "csv_out": "file", "save": "store"},
                {"inputs": "--batch-size, --seq-len, --image-size", "batch_sweep": "Python API",
                 "generation": "--prompt-len, --new-tokens, --batch-size", "batch_sizes": "--batch-size (a list)",
                 "decode_samples": "Python API", "generate": "set by --new-tokens (the generating head)",
                 "breakdown_depth": "Python API", "top_n": "Python API", "training_precision": "Python API",
                 "utilization": "Python API (estimate has --utilization)", "extra_assumptions": "Python API",
                 "library_progress": "Python API (the CLI silences transformers' bars)"}),
    "evaluate": ((DataOptions, "evaluate"), {"data": "source", "resamples": "n_resamples", "metrics": "metrics"},
                 {"model": "argument", "split": "evaluate()", "batch_size": "evaluate()", "max_length": "evaluate()",
                  "max_examples": "evaluate()", "tokenizer": "evaluate()", "metrics": "evaluate()",
                  "device": "load", "json_out": "file", "save": "store"},
                 {"handle": "the model", "dataset": "--data", "progress": "a bar on a terminal",
                  "max_train_examples": "no training",
                  "max_eval_examples": "--max-examples"}),
    "estimate": ((estimate_training, LoadConfig, InputSpec, HardwareSettings), {"hardware": "hardware"},
                 {"model": "argument", "json_out": "file", "csv_out": "file", "save": "store"},
                 {"handle": "the model", "config_only": "--measure-step loads weights", "device": "counted on meta",
                  "inputs": "--batch-size ...", "input_shapes": "factories: profile",
                  "input_dtype": "factories: profile", "trust_remote_code": "profile", "num_labels": "profile",
                  "generate": "profile --new-tokens", "library_progress": "Python API"}),
}


def configs_of(name: str) -> set[str]:
    configs = PAIRS[name][0]
    if "evaluate" in configs:
        from steelyard.evaluation import evaluate

        configs = (*(c for c in configs if c != "evaluate"), evaluate)
    return fields(*configs)


def command_params(name: str) -> set[str]:
    return {p.name for p in typer.main.get_command(app).commands[name].params}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_config_field_has_an_option_and_every_option_a_field(name):
    _, renames, cli_only, not_on_cli = PAIRS[name]
    known = configs_of(name)
    params = command_params(name)
    params -= set(RUN_LABELS)  # every command here records a run: checked once, below
    no_field = sorted(p for p in params if renames.get(p, p) not in known and p not in cli_only and p not in SCRIPTING)
    assert not no_field, f"{name}: options that feed no config field (list them as deliberate or add the field)"
    covered = {renames.get(p, p) for p in params}
    no_option = sorted(f for f in known if f not in covered and f not in not_on_cli)
    assert not no_option, f"{name}: config fields without an option (add one or list them as deliberate)"
    stale = sorted(f for f in not_on_cli if f in covered or f not in known)
    assert not stale, f"{name}: listed as deliberate but now covered or gone: {stale}"


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_recording_command_takes_the_run_labels_from_one_declaration(name):
    from steelyard.cli.run_options import RUN

    commands = typer.main.get_command(app).commands
    assert set(RUN_LABELS) <= command_params(name)
    for param in commands[name].params:
        if param.name in RUN_LABELS:
            assert param.help == RUN.annotated("name" if param.name == "name" else "tags").__metadata__[0].help


def test_the_training_commands_share_one_declaration_of_each_training_option():
    """Same flag, same help, same default in finetune, distill and compare-optimizers (one source)."""
    commands = typer.main.get_command(app).commands
    for option in ("epochs", "batch_size", "weight_decay", "max_grad_norm", "max_length", "seed", "tokenizer"):
        seen = {(p.help, p.default, tuple(p.opts)) for c in ("finetune", "distill", "compare-optimizers")
                for p in commands[c].params if p.name == option}
        assert len(seen) == 1, (option, seen)
        help_text = next(iter(seen))[0]
        field_help = {f.name: f.metadata.get("help") for f in dataclasses.fields(FinetuneConfig)}[option]
        assert help_text == field_help


@dataclass(frozen=True)
class Toy:
    size: int = field(default=3, metadata={"help": "how big"})
    name: str | None = field(default=None, metadata={"help": "what to call it"})
    fast: bool = field(default=True, metadata={"help": "go fast"})
    secret: int = 7


def test_options_come_from_the_fields_and_build_the_config():
    group = Group.of(Toy).with_opts(Opt("fast", param="slow", flags=("--slow",), default=False,
                                        parse=lambda slow: not slow, help="go slow"))
    assert [o.field for o in group.opts] == ["size", "name", "fast"]  # secret has no help: not an option
    built: list[Toy] = []

    @with_options(group)
    def command(label: str, *, opts: dict[str, Any]) -> None:
        built.append(group.build(opts, secret=len(label)))

    toy = typer.Typer()
    toy.command()(command)
    result = CliRunner().invoke(toy, ["ab", "--size", "5", "--slow"])
    assert result.exit_code == 0, result.output
    assert built == [Toy(size=5, name=None, fast=False, secret=2)]
    help_text = CliRunner().invoke(toy, ["--help"]).output
    assert "how big" in help_text and "go slow" in help_text and "--secret" not in help_text


def test_a_group_refuses_a_field_its_config_does_not_have():
    with pytest.raises(TypeError, match="no field colour"):
        Group.of(Toy, "colour")


def test_one_output_check_for_every_command_that_writes_a_model(tmp_path):
    from steelyard.cli.compress_cmd import check_onnx_output
    from steelyard.compression.recipe import parse_recipe
    from steelyard.errors import ConfigError
    from steelyard.outputs import check_output

    model = tmp_path / "model"
    model.mkdir()
    for bad in (model, model / "inside", tmp_path):
        with pytest.raises(ConfigError, match="would overwrite or contain the input"):
            check_output(bad, [str(model)])
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="already exists; choose another path or pass --overwrite"):
        check_output(full, [str(model)])
    check_output(full, [str(model)], overwrite=True)
    (full / "config.json").unlink()
    (full / "thesis.tex").write_text("mine")
    with pytest.raises(ConfigError, match="holds no model"):  # --overwrite never deletes a folder of other files
        check_output(full, [str(model)], overwrite=True)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", [str(model)])  # an empty folder is written into
    with pytest.raises(ConfigError, match=r"only an onnxruntime-backend model saves as an \.onnx file"):
        check_onnx_output(tmp_path / "m.onnx", parse_recipe("quantize:int8-dynamic"))
