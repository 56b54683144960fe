"""Head-only checkpoints (``finetune --freeze-encoder``: an encoder folder + ``steelyard_head``) expose
their encoder's structure, so ``optimize`` prunes their layers, heads and FFN like any classifier."""

from __future__ import annotations

from pathlib import Path

import pytest

import steelyard as sy
from steelyard.data.options import DataOptions
from steelyard.evaluation.heads import HEAD_FILE, HEAD_KEY, LinearHead, PooledClassifier, save_head
from steelyard.families import dimensions
from steelyard.search.optimize import builtin_space
from text_toys import reviews_csv, tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"batch_size": 8, "max_length": 32, "rounds": 2, "isolation": "inline", "progress": False}


def head_only(folder: Path, source: Path) -> Path:
    """What ``finetune --freeze-encoder`` writes: the bare encoder, its tokenizer, a linear head file."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(source)
    setattr(encoder.config, HEAD_KEY, {"pooling": "mean", "file": HEAD_FILE})
    encoder.config.id2label, encoder.config.label2id = {0: "0", 1: "1"}, {"0": 0, "1": 1}
    encoder.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    save_head(LinearHead(encoder.config.hidden_size, 2), folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("head-only")
    model = tiny_bert(root / "model", layers=4, hidden=32, heads=4)
    return head_only(root / "head", model), reviews_csv(root / "r.csv", 40)


def test_a_head_only_classifier_has_its_encoders_dimensions(checkpoint):
    from steelyard.models import load_model

    handle = load_model(str(checkpoint[0]))
    wrapped = PooledClassifier(handle.module, LinearHead(32, 2))
    dims = dimensions(wrapped)
    assert (dims.layers, dims.heads, dims.ffn) == (4, 4, 64) == (
        dimensions(handle.module).layers, dimensions(handle.module).heads, dimensions(handle.module).ffn)
    space = builtin_space(handle)
    assert {"depth", "ffn", "heads"} <= set(space.names) and "experts" not in space.names


def test_optimize_on_a_head_only_checkpoint_fails_no_trial(checkpoint, tmp_path):
    model, data = checkpoint
    cfg = sy.OptimizeConfig(trials=3, max_drop=100.0, recovery_steps=1, storage=str(tmp_path / "s.db"),
                            study="head-only", sampler_seed=0, **FAST)
    result = sy.optimize(str(model), DataOptions(str(data)), cfg)
    failed = [r.reason for r in result.summary.rows if r.state == "fail"]
    assert not failed and len(result.summary.rows) == 3
    # the second starting point, the corner, drops layers (a hopeless one may be pruned, never failed)
    done = [r.recipe or "" for r in result.summary.rows if r.state == "complete"]
    assert any("prune:layers" in r for r in done), [(r.state, r.recipe, r.reason) for r in result.summary.rows]
