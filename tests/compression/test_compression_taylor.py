"""Taylor (gradient) importance for structured pruning: dead units ranked last, scores equal to a
finite-difference hand computation, and the no-data / no-logits errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from compression_toys import BERT, outputs, small_cnn, tiny_bert
from steelyard.compression import CalibrationError, NotApplicableError, StructuredPruneConfig, compress, parse_method
from steelyard.compression.pruning.taylor import transformer_scores
from steelyard.compression.registry import method_info
from steelyard.errors import ConfigError
from steelyard.models import ModelHandle

INTER, HEADS = BERT["intermediate_size"], BERT["num_attention_heads"]
HEAD_DIM = BERT["hidden_size"] // HEADS
DEAD = 5  # the FFN neuron made dead
DEAD_HEAD = 1


def _batches(handle, n: int = 2, labels: bool = True) -> list[dict]:
    gen = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        ids = torch.randint(1, BERT["vocab_size"], handle.inputs["input_ids"].shape, generator=gen)
        batch = {**handle.inputs, "input_ids": ids}
        if labels:
            batch["labels"] = torch.randint(0, BERT["num_labels"], (ids.shape[0],), generator=gen)
        out.append(batch)
    return out


def _dead_ffn_bert():
    """Neuron DEAD of every layer writes nothing (zero output column) but has the largest input row."""
    handle = tiny_bert()
    with torch.no_grad():
        for layer in handle.module.bert.encoder.layer:
            layer.output.dense.weight[:, DEAD] = 0
            layer.intermediate.dense.weight[DEAD] *= 10
    return handle


def test_taylor_removes_the_dead_ffn_neuron_that_magnitude_keeps():
    handle = _dead_ffn_bert()
    cfg = dict(amount=1 / INTER, round_to=1)
    taylor = compress(handle, StructuredPruneConfig(importance="taylor", **cfg), data=_batches(handle))
    l1 = compress(handle, StructuredPruneConfig(importance="l1", **cfg))
    for i, layer in enumerate(handle.module.bert.encoder.layer):
        w = layer.intermediate.dense.weight
        expected = torch.cat([w[:DEAD], w[DEAD + 1 :]])
        assert torch.equal(taylor.handle.module.bert.encoder.layer[i].intermediate.dense.weight, expected)
        kept_by_l1 = l1.handle.module.bert.encoder.layer[i].intermediate.dense.weight
        assert any(torch.equal(row, w[DEAD]) for row in kept_by_l1)  # magnitude keeps the loud dead neuron
    # removing a neuron that writes nothing leaves the function unchanged; the L1 choice does not
    torch.testing.assert_close(outputs(taylor.handle), outputs(handle), rtol=0, atol=1e-6)
    assert not torch.allclose(outputs(l1.handle), outputs(handle), rtol=0, atol=1e-6)
    assert taylor.details["taylor_labels"] is True and taylor.details["taylor_batches"] == 2
    assert any("Taylor" in note for note in taylor.notes)


def test_taylor_removes_the_dead_head_with_pseudo_labels():
    handle = tiny_bert()
    cols = slice(DEAD_HEAD * HEAD_DIM, (DEAD_HEAD + 1) * HEAD_DIM)
    with torch.no_grad():
        for layer in handle.module.bert.encoder.layer:
            layer.attention.output.dense.weight[:, cols] = 0  # the head's output is thrown away
            layer.attention.self.query.weight[cols] *= 10
    result = compress(
        handle, StructuredPruneConfig(amount=0.0, heads=0.25, importance="taylor"), data=_batches(handle, labels=False)
    )
    for i, layer in enumerate(handle.module.bert.encoder.layer):
        q = layer.attention.self.query.weight
        kept = torch.cat([q[: cols.start], q[cols.stop :]])
        assert torch.equal(result.handle.module.bert.encoder.layer[i].attention.self.query.weight, kept)
    torch.testing.assert_close(outputs(result.handle), outputs(handle), rtol=0, atol=1e-6)
    assert result.details["taylor_labels"] is False
    assert any("pseudo-labels" in note for note in result.notes)


def _loss_at(module, batch, scale_unit, alpha: float) -> float:
    """The loss with one unit's owned weights multiplied by ``alpha`` (on a copy)."""
    model = copy.deepcopy(module)
    with torch.no_grad():
        scale_unit(model, alpha)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits
    return float(F.cross_entropy(logits, batch["labels"]))


def test_scores_equal_a_finite_difference_hand_computation():
    """Σ w·∂L/∂w over a unit's weights is dL/dα of scaling them by α at α = 1 (central difference)."""
    handle = tiny_bert(num_hidden_layers=1)
    handle.module.double()
    batches = _batches(handle, n=2)
    layer = handle.module.bert.encoder.layer[0]
    with torch.no_grad():  # BERT starts with zero biases; give them values so their b·∂L/∂b terms count
        for lin in layer.modules():
            if isinstance(lin, torch.nn.Linear):
                lin.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(lin.out_features))
    scores = transformer_scores(handle, None, batches, ("ffn", "heads"))
    assert scores.labels and scores.batches == 2

    def neuron(j):
        def scale(model, alpha):
            lay = model.bert.encoder.layer[0]
            lay.intermediate.dense.weight[j] *= alpha
            lay.intermediate.dense.bias[j] *= alpha
            lay.output.dense.weight[:, j] *= alpha

        return scale

    def head(h):
        rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)

        def scale(model, alpha):
            lay = model.bert.encoder.layer[0]
            for lin in (lay.attention.self.query, lay.attention.self.key, lay.attention.self.value):
                lin.weight[rows] *= alpha
                lin.bias[rows] *= alpha
            lay.attention.output.dense.weight[:, rows] *= alpha

        return scale

    eps = 1e-5
    module = handle.module

    def hand(scale_unit) -> float:
        total = 0.0
        for batch in batches:
            up, down = _loss_at(module, batch, scale_unit, 1 + eps), _loss_at(module, batch, scale_unit, 1 - eps)
            total += abs((up - down) / (2 * eps))
        return total

    for j in (0, 7, 63):
        assert scores.of("ffn")[j].item() == pytest.approx(hand(neuron(j)), rel=1e-5, abs=1e-12)
    for h in range(HEADS):
        assert scores.of("heads")[h].item() == pytest.approx(hand(head(h)), rel=1e-5, abs=1e-12)
    # the scoring left the model as it was: flags restored, no gradients kept
    assert all(p.requires_grad and p.grad is None for p in module.parameters())
    assert module.training is False


def test_cnn_taylor_removes_the_dead_channel_that_magnitude_keeps():
    torch.manual_seed(0)
    module = small_cnn().eval()
    dead = 3
    with torch.no_grad():
        module[3].weight[:, dead] = 0  # the next conv ignores channel 3 of the first conv
        module[0].weight[dead] *= 10
    handle = ModelHandle("cnn", "factory", "image-classification", module, (torch.randn(2, 3, 16, 16),))
    data = [(torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(s)),) for s in range(2)]
    cfg = dict(amount=1 / 16, round_to=1)
    taylor = compress(handle, StructuredPruneConfig(importance="taylor", **cfg), data=data)
    l1 = compress(handle, StructuredPruneConfig(**cfg))
    w = module[0].weight
    assert torch.equal(taylor.handle.module[0].weight, torch.cat([w[:dead], w[dead + 1 :]]))
    assert any(torch.equal(row, w[dead]) for row in l1.handle.module[0].weight)
    assert taylor.handle.module[0].out_channels == 15 and taylor.handle.module[3].in_channels == 15
    assert not any(bool((taylor.handle.module[3].weight[:, c] == 0).all()) for c in range(15))


def test_taylor_without_data_is_a_calibration_error():
    handle = tiny_bert()
    with pytest.raises(CalibrationError, match="importance=taylor needs data"):
        compress(handle, StructuredPruneConfig(importance="taylor"))
    with pytest.raises(CalibrationError, match="no batch"):
        compress(handle, StructuredPruneConfig(importance="taylor"), data=[])


def test_taylor_needs_logits():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(**BERT)
    handle = tiny_bert()
    base = ModelHandle("bert", "config", "feature-extraction", BertModel(config).eval(), handle.inputs, config)
    with pytest.raises(NotApplicableError, match="needs a model with logits"):
        compress(base, StructuredPruneConfig(importance="taylor"), data=[handle.inputs])


def test_labels_that_do_not_fit_the_logits():
    handle = tiny_bert()
    bad = {**handle.inputs, "labels": torch.zeros(2, 16, dtype=torch.long)}
    with pytest.raises(CalibrationError, match="do not match logits"):
        compress(handle, StructuredPruneConfig(importance="taylor"), data=[bad])


def test_registry_lists_taylor_and_parses_it():
    info = {p.name: p for p in method_info("prune:structured").parameters}
    assert info["importance"].choices == ("l1", "l2", "taylor")
    cfg = parse_method("prune:structured,importance=taylor,batches=4")
    assert cfg.importance == "taylor" and cfg.batches == 4
    with pytest.raises(ConfigError, match="l1, l2, taylor"):
        parse_method("prune:structured,importance=hessian")
    with pytest.raises(ConfigError, match="batches"):
        StructuredPruneConfig(batches=0)


def test_cli_refuses_taylor_without_data(tmp_path, capsys):
    from steelyard.cli.main import run

    tiny_bert().module.save_pretrained(tmp_path / "model")
    capsys.readouterr()  # the save's progress bar
    recipe = "prune:structured,importance=taylor"
    code = run(["compress", str(tmp_path / "model"), "--recipe", recipe, "--max-length", "16", "--no-save"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "needs data" in err, err
