"""Lazy package exports (``steelyard.lazy``): the CLI builds its options from the training and
distillation configs without importing torch, and a name that is also a submodule's stays the
function, as it was with eager imports."""

from __future__ import annotations

import subprocess
import sys
import types


def test_the_cli_and_the_configs_import_without_torch():
    code = ("import sys, steelyard.cli.main, steelyard.training.config, steelyard.distill.config; "
            "print(sorted(m for m in ('torch', 'transformers', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_export_named_like_its_submodule_stays_the_function():
    import steelyard.training.data_needs
    import steelyard.training.finetune  # noqa: F401
    from steelyard.training import FinetuneConfig, data_needs, finetune

    assert callable(finetune) and not isinstance(finetune, types.ModuleType)
    assert callable(data_needs) and not isinstance(data_needs, types.ModuleType)
    assert FinetuneConfig().batch_size == 16
    assert sys.modules["steelyard.training.finetune"].finetune is finetune


def test_unknown_names_and_dir():
    import pytest

    import steelyard.distill as distill

    assert "DistillConfig" in dir(distill) and "DistillConfig" in distill.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        distill.nope  # noqa: B018
