"""The method registry: listing, parsing, dispatch and bad input."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from steelyard.compression import METHODS, compress, list_methods, make_config, method_name, parse_method
from steelyard.compression.low_rank.config import LowRankConfig
from steelyard.compression.pruning.config import StructuredPruneConfig, UnstructuredPruneConfig
from steelyard.compression.quantization.config import CastConfig, DynamicQuantConfig, WeightOnlyConfig
from steelyard.errors import ConfigError, SteelyardError


def test_every_method_is_listed_with_documented_parameters():
    infos = list_methods()
    assert [i.name for i in infos] == list(METHODS)
    for info in infos:
        assert info.summary
        for p in info.parameters:
            assert p.help, f"{info.name}.{p.name} has no help text"
        assert info.name in info.describe()
    structured = next(i for i in infos if i.name == "prune:structured")
    importance = next(p for p in structured.parameters if p.name == "importance")
    assert importance.choices == ("l1", "l2", "taylor")


def test_parse_and_name_round_trip_for_every_method():
    for name in METHODS:
        config = parse_method(name)
        assert method_name(config) == name
        assert dataclasses.is_dataclass(config)
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.__setattr__(dataclasses.fields(config)[0].name, None)


def test_parse_values():
    assert parse_method("prune:structured,amount=0.3") == StructuredPruneConfig(amount=0.3)
    assert parse_method(" prune:structured , amount = 0.5 , heads=0.25, round-to=1 ") == StructuredPruneConfig(
        amount=0.5, heads=0.25, round_to=1
    )
    assert parse_method("quantize:int8-dynamic,per_channel=false,backend=onnxruntime") == DynamicQuantConfig(
        per_channel=False, backend="onnxruntime"
    )
    assert parse_method("quantize:bf16") == CastConfig(dtype="bfloat16")
    assert parse_method("quantize:int4-weight-only") == WeightOnlyConfig(bits=4, group_size=32)
    assert parse_method("low-rank:svd,energy=0.9") == LowRankConfig(energy=0.9)
    assert parse_method("low-rank:svd,energy=none") == LowRankConfig()
    assert parse_method("prune:unstructured,norm=2") == UnstructuredPruneConfig(norm=2)
    assert parse_method("quantize:int4-weight-only,group_size=128,symmetric=false") == WeightOnlyConfig(
        bits=4, group_size=128, symmetric=False)  # the group size is a default the user may change
    assert method_name(WeightOnlyConfig(bits=4, group_size=64)) == "quantize:int4-weight-only"


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown compression method 'prune:magic'.*prune:structured"):
        parse_method("prune:magic,amount=0.3")


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown parameter 'amout'; valid parameters: amount, heads"):
        parse_method("prune:structured,amout=0.3")
    with pytest.raises(ConfigError, match="unknown parameter 'dtype'"):
        parse_method("quantize:fp16,dtype=bfloat16")  # fixed by the method's preset
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_config("quantize:int8-dynamic", bits=4)


@pytest.mark.parametrize("amount", ["0", "1", "1.5", "-0.1"])
def test_amount_outside_open_unit_interval(amount):
    with pytest.raises(ConfigError, match=r"amount must be in \(0, 1\)"):
        parse_method(f"prune:unstructured,amount={amount}")
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        parse_method(f"prune:layers,amount={amount}")


def test_bad_values():
    with pytest.raises(ConfigError, match="amount must be a float"):
        parse_method("prune:structured,amount=lots")
    with pytest.raises(ConfigError, match="backend must be one of torch, onnxruntime"):
        parse_method("quantize:int8-dynamic,backend=tensorrt")
    with pytest.raises(ConfigError, match="per_channel must be a bool"):
        parse_method("quantize:int8-dynamic,per_channel=maybe")
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_method("prune:structured,0.3")
    with pytest.raises(ConfigError, match=r"amount must be in \(0, 1\)"):
        StructuredPruneConfig(amount=0.0, heads=0.0)
    with pytest.raises(ConfigError, match="heads must be in"):
        StructuredPruneConfig(heads=1.0)
    with pytest.raises(ConfigError, match="energy must be in"):
        LowRankConfig(energy=1.5)
    with pytest.raises(ConfigError, match="bits must be one of 8, 4"):
        WeightOnlyConfig(bits=3)
    with pytest.raises(ConfigError, match="granularity=row needs scope=layer"):
        UnstructuredPruneConfig(granularity="row")
    assert issubclass(ConfigError, SteelyardError)


def test_compress_refuses_what_is_not_a_config():
    from compression_toys import tiny_bert

    with pytest.raises(ConfigError, match="is not a compression config"):
        compress(tiny_bert(), {"method": "prune:structured"})


def test_registry_import_is_light():
    code = (
        "import sys, steelyard.compression as c; c.list_methods(); c.parse_method('prune:structured,amount=0.3'); "
        "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'torch_pruning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
