"""Reproduce commands rebuilt from stored configs by one generic flag table per command."""

from __future__ import annotations

from steelyard.models.loading import LoadConfig
from steelyard.models.tasks import InputSpec
from steelyard.profiling.profile import ProfileConfig
from steelyard.reporting.commands import PROFILE_FLAGS, config_fields, profile_command
from steelyard.serialize import to_dict


def stored(load: LoadConfig, prof: ProfileConfig) -> dict:
    return {"LoadConfig": to_dict(load), "ProfileConfig": to_dict(prof)}


def test_profile_command_writes_the_harness_and_what_differs_from_the_defaults():
    config = stored(LoadConfig(dtype="bfloat16", inputs=InputSpec(batch_size=4, seq_len=64), num_labels=3),
                    ProfileConfig(hardware=("t4",), measure=False, optimizer="sgd"))
    assert profile_command("bert-base-uncased", config) == (
        "steelyard profile bert-base-uncased --batch-size 4 --seq-len 64 --dtype bfloat16 --num-labels 3 "
        "--hardware t4 --runs 20 --warmup 3 --no-measure --optimizer sgd")


def test_config_only_profile_has_no_timing_options_and_shapes_repeat():
    config = stored(LoadConfig(config_only=True, input_shapes=((1, 3, 32, 32), (1, 10))), ProfileConfig(threads=2))
    command = profile_command("pkg.mod:factory", config)
    assert "--config-only" in command and "--runs" not in command and "--threads" not in command
    assert "--input-shape 1,3,32,32 --input-shape 1,10" in command


def test_a_stored_run_missing_a_field_uses_its_default_and_one_without_configs_has_no_command():
    config = stored(LoadConfig(), ProfileConfig())
    del config["LoadConfig"]["inputs"]["seq_len"]
    assert "--seq-len 128" in profile_command("m", config)
    assert profile_command("m", {"command": "x"}) is None


def test_every_profile_flag_names_a_config_field():
    from steelyard.profiling.generation_config import GenerationWorkload

    fields = set(config_fields(LoadConfig, "LoadConfig")) | set(config_fields(ProfileConfig, "ProfileConfig"))
    fields |= set(config_fields(GenerationWorkload, "ProfileConfig.generation"))  # None by default
    assert {f.path for f in PROFILE_FLAGS} <= fields


def test_a_quantized_kv_cache_is_in_the_profile_command_and_the_float_one_is_not():
    from steelyard.profiling.generation_config import GenerationWorkload

    def command(**kv) -> str:
        workload = GenerationWorkload(prompt_len=1024, new_tokens=64, **kv)
        return profile_command("m", stored(LoadConfig(), ProfileConfig(generation=workload)))

    assert "--prompt-len 1024 --new-tokens 64" in command() and "--kv" not in command()
    assert command(kv_cache="int4", kv_residual_length=32).endswith(
        "--prompt-len 1024 --new-tokens 64 --kv-cache int4 --kv-residual-length 32")


def test_a_finetune_on_a_wider_validation_split_replays_with_it():
    """A model fine-tuned with --val-fraction 0.2 trained on other examples than the default split's:
    the stored run's command must say so, or rerunning it trains on what the first run validated on."""
    from types import SimpleNamespace

    from steelyard.data.options import DataOptions
    from steelyard.reporting.commands import finetune_command
    from steelyard.training.config import FinetuneConfig

    def command(data: DataOptions) -> str | None:
        record = SimpleNamespace(model="m", config={"FinetuneConfig": to_dict(FinetuneConfig(epochs=3)),
                                                    "DataOptions": to_dict(data)},
                                 payload={"result": {"output": "out"}})
        return finetune_command(record)

    assert "--val-fraction 0.2" in command(DataOptions("bbc-news", val_fraction=0.2))
    assert "--val-fraction" not in command(DataOptions("bbc-news"))  # the default is left out
