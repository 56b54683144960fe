"""The Python API as a user meets it: ``dir(steelyard)``, names type checkers see, configs that take one
name for a tuple, a one-line ``repr`` of a handle, and no transformers bars unless asked."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

import steelyard
from steelyard.comparison.config import CompareConfig
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.profile import ProfileConfig
from tiny_configs import save_tiny_bert

INIT = Path(steelyard.__file__)


def test_dir_lists_every_public_name_without_importing_them():
    code = ("import sys, steelyard; names = dir(steelyard); "
            "print(all(n in names for n in steelyard._LAZY), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]
    assert {"profile", "ProfileConfig", "load_model", "set_progress_display", "__version__"} <= set(dir(steelyard))


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") ==
                 "TYPE_CHECKING")
    out = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: write 'X as X' so type checkers re-export it"
            out[alias.name] = node.module
    return out


def test_type_checkers_see_every_lazy_name_from_its_module():
    seen = _type_checking_imports()
    assert set(seen) == set(steelyard._LAZY)
    for name, module in steelyard._LAZY.items():
        expected = "steelyard.search.search_run" if name == "search" else module  # the package is the verb
        assert seen[name] == expected, name


@pytest.mark.parametrize(("given", "expected"), [("t4", ("t4",)), ("local, t4", ("local", "t4")),
                                                 (["t4", "l4"], ("t4", "l4")), (("t4",), ("t4",))])
def test_one_hardware_name_is_a_tuple_of_one(given, expected):
    assert ProfileConfig(hardware=given).hardware == expected
    assert CompareConfig(hardware=given).hardware == expected


def test_other_tuple_fields_take_one_value_too():
    assert ProfileConfig(batch_sweep=8).batch_sweep == (8,)
    assert ProfileConfig(extra_assumptions="tokens, not words").extra_assumptions == ("tokens, not words",)
    assert CompareConfig(metrics="f1").metrics == ("f1",)
    assert CompareConfig(objectives="accuracy,latency").objectives == ("accuracy", "latency")
    assert GenerationWorkload(batch_sizes=8).batch_sizes == (8,)
    assert GenerationWorkload(batch_sizes="1,8").batch_sizes == (1, 8)
    hash(ProfileConfig(hardware=["t4"]))  # still a hashable frozen config


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bert")
    return save_tiny_bert(path, max_positions=512)


def test_repr_of_a_handle_is_one_line(bert_dir):
    handle = steelyard.load_model(str(bert_dir))
    text = repr(handle)
    assert "\n" not in text and len(text) < 300, text
    assert "BertForSequenceClassification" in text and "task='text-classification'" in text
    assert "37,955 parameters" in text and "input_ids=1×128" in text


@pytest.fixture
def bars_on():
    """transformers' bars on (as in a fresh session), whatever earlier tests did; restored afterwards."""
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    yield
    (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def test_loading_draws_no_transformers_bar_unless_asked(bert_dir, capfd, bars_on):
    steelyard.load_model(str(bert_dir))
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the user's own setting is back afterwards
    steelyard.load_model(str(bert_dir), steelyard.LoadConfig(library_progress=True))
    assert "Loading weights" in capfd.readouterr().err
