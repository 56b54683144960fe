"""Distributed data parallel on CPU: two gloo processes through the elastic launcher.

The ranks must end with identical weights (parameters through DDP's gradient averaging, BatchNorm
statistics through the buffer sync), rank 0 saves the model, and the result has exactly the
structure a single process writes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from steelyard.data import load_dataset
from steelyard.errors import ConfigError
from steelyard.evaluation import evaluate
from steelyard.models import load_model
from steelyard.serialize import versioned
from steelyard.training import FinetuneConfig, finetune
from steelyard.training.launch import available_cpus
from tiny_configs import save_tiny_resnet


def shape_of(data: Any) -> Any:
    """The key structure of a JSON value: dict keys, recursively, and list items by their first."""
    if isinstance(data, dict):
        return {k: shape_of(v) for k, v in data.items()}
    if isinstance(data, list):
        return [shape_of(data[0])] if data else []
    return "value"


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-resnet-ddp")
    save_tiny_resnet(path)
    return path


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPU cores")
def test_two_gloo_processes_match_and_write_the_single_process_format(tiny_resnet, tmp_path):
    ds = load_dataset("digits").subset({"train": 400, "validation": 100, "test": 100})
    cfg = FinetuneConfig(epochs=2, lr=3e-3, batch_size=32, nproc=2, target="accuracy=0.99")
    result = finetune(str(tiny_resnet), ds, cfg, output=tmp_path / "ddp")
    info = result.distributed
    assert info.world_size == 2 and info.backend == "gloo" and info.per_process_batch == 16
    assert len(info.weight_digests) == 2 and info.weight_digests[0] == info.weight_digests[1]
    # Same global batch: the same number of steps as one process would take.
    assert result.cost.steps == 2 * math.ceil(400 / 32) and result.cost.samples_seen == 2 * 400
    assert result.test["accuracy"].n == 100 and result.trained is None
    saved = json.loads((tmp_path / "ddp" / "training_result.json").read_text())
    assert saved["distributed"]["weight_digests"] == info.weight_digests
    # The saved model is rank 0's and evaluates to the reported test accuracy.
    again = evaluate(load_model(str(tmp_path / "ddp")), ds)
    assert again.metrics["accuracy"].value == pytest.approx(result.test["accuracy"].value)

    single = finetune(str(tiny_resnet), ds, FinetuneConfig(epochs=2, lr=3e-3, batch_size=32,
                                                           target="accuracy=0.99"), output=tmp_path / "one")
    single_file = json.loads((tmp_path / "one" / "training_result.json").read_text())
    assert shape_of(single_file) == shape_of(saved) == shape_of(versioned(result.to_dict()))
    assert single.distributed.world_size == 1 and single.cost.steps == result.cost.steps


def test_nproc_beyond_the_machine_is_refused(tiny_resnet):
    ds = load_dataset("digits")
    with pytest.raises(ConfigError, match="CPU cores"):
        finetune(str(tiny_resnet), ds, FinetuneConfig(nproc=available_cpus() + 1))
