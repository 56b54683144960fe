"""Distillation: the loss against hand computations, students built from the teacher, the training
loop with cached and online teachers, hidden-state matching, the whole API, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification

from distill_toys import LABELS, MAX_LENGTH, tiny_bert, toy_dataset, trained_teacher
from steelyard.data import load_dataset
from steelyard.distill import (
    DistillConfig,
    distill,
    distill_module,
    distillation_loss,
    hidden_state_loss,
    hidden_targets,
    make_student,
    parse_spec,
    soft_loss,
    spread,
)
from steelyard.distill.student import build_student
from steelyard.distill.train import TEACHER_KEY, TeacherTargets, with_teacher_logits
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation import evaluate
from steelyard.evaluation.predict import predict
from steelyard.evaluation.predictor import make_adapter
from steelyard.models import load_model
from steelyard.training import FinetuneConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    return trained_teacher(tmp_path_factory.mktemp("distill"))


@pytest.fixture()
def teacher(teacher_dir):
    return load_model(str(teacher_dir))


def train_cfg(**kwargs) -> FinetuneConfig:
    base = dict(epochs=2, lr=2e-3, batch_size=16, max_length=MAX_LENGTH)
    return FinetuneConfig(**{**base, **kwargs})


# --- the loss --------------------------------------------------------------------------------------


def test_loss_matches_a_hand_computation():
    s, t, y = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([1])
    # T = 2: p = softmax(1, .5, 0) and q = softmax(.5, 1, 0) swap their first two entries, so
    # KL(p || q) = (p0 - p1) · (ln p0 - ln p1) = (p0 - p1) · 0.5.
    e = math.e
    z = e + e**0.5 + 1
    kl = (e - e**0.5) / z * 0.5
    ce = math.log(1 + e**-1 + e**-2)  # -log softmax(1, 2, 0)[1]
    assert kl == pytest.approx(0.0996422527) and ce == pytest.approx(0.4076059644)
    loss = distillation_loss(s, t, y, alpha=0.3, temperature=2.0)
    assert loss.item() == pytest.approx(0.3 * ce + 0.7 * 4 * kl, rel=1e-6)
    assert loss.item() == pytest.approx(0.4012800968, rel=1e-6)
    # batchmean: the KL per example, so a batch of two copies gives the same number
    two = distillation_loss(s.repeat(2, 1), t.repeat(2, 1), y.repeat(2), alpha=0.3, temperature=2.0)
    assert two.item() == pytest.approx(loss.item(), rel=1e-6)


def test_alpha_extremes():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    hard = distillation_loss(s, t, y, alpha=1.0, temperature=3.0)
    assert hard.item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-6)
    assert distillation_loss(s, t * 10, y, alpha=1.0, temperature=3.0).item() == pytest.approx(hard.item())
    soft = distillation_loss(s, t, y, alpha=0.0, temperature=3.0)
    kl = F.kl_div(F.log_softmax(s / 3, -1), F.softmax(t / 3, -1), reduction="sum").item() / 5
    assert soft.item() == pytest.approx(9 * kl, rel=1e-5)
    assert distillation_loss(s, s, y, alpha=0.0, temperature=3.0).item() == pytest.approx(0.0, abs=1e-6)
    # labels play no part at alpha 0
    assert distillation_loss(s, t, y.flip(0), alpha=0.0, temperature=3.0).item() == pytest.approx(soft.item())


def test_t_squared_keeps_the_soft_term_scale_at_high_temperature():
    """For T → ∞, T²·KL → Σ (d_i − mean d)² / (2K) with d = teacher − student logits: without the T²
    factor the soft term would vanish as 1/T² (Hinton et al. 2015, §2.1)."""
    s, t = torch.tensor([[0.5, -1.0, 2.0, 0.0]]), torch.tensor([[1.5, 0.0, -1.0, 0.5]])
    d = t - s
    limit = ((d - d.mean()) ** 2).sum().item() / (2 * 4)
    values = {T: soft_loss(s, t, T).item() for T in (1.0, 10.0, 100.0)}
    assert values[100.0] == pytest.approx(limit, rel=5e-3)
    assert values[10.0] == pytest.approx(limit, rel=0.05)
    assert abs(values[100.0] - limit) < abs(values[10.0] - limit) < abs(values[1.0] - limit)
    raw = F.kl_div(F.log_softmax(s / 100, -1), F.log_softmax(t / 100, -1), reduction="batchmean", log_target=True)
    assert values[100.0] == pytest.approx(1e4 * raw.item(), rel=1e-5)


def test_hidden_state_loss_ignores_padding():
    s = torch.zeros(1, 3, 2)
    t = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])  # the last position is padding
    mask = torch.tensor([[1, 1, 0]])
    assert hidden_state_loss([s], [t], mask).item() == pytest.approx((1 + 1 + 9 + 9) / 4)
    assert hidden_state_loss([s, s], [t, t * 0], mask).item() == pytest.approx((5.0 + 0.0) / 2)
    proj = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        proj.weight.copy_(torch.eye(2))
    assert hidden_state_loss([s + 1], [t], mask, proj).item() == pytest.approx((0 + 0 + 4 + 4) / 4)


# --- configs and specs ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"alpha": 1.5}, {"alpha": -0.1}, {"temperature": 0.0},
                                    {"temperature": float("inf")}, {"hidden_weight": -1.0},
                                    {"hidden_states": True, "hidden_weight": 0.0},
                                    {"train": FinetuneConfig(freeze_encoder=True)}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        DistillConfig(**kwargs)


def test_spec_parsing():
    assert parse_spec("layers=3") is not None and parse_spec("layers=3").layers == 3
    spec = parse_spec("layers=3, hidden=256,heads=4")
    assert (spec.layers, spec.hidden, spec.heads, spec.ffn) == (3, 256, 4, None)
    assert str(spec) == "layers=3,hidden=256,heads=4"
    assert parse_spec("bert-base-uncased") is None and parse_spec("pkg.mod:factory") is None
    for bad, fragment in (("layers=0", "at least 1"), ("layers=x", "whole number"), ("width=3", "unknown"),
                          ("layers=2,layers=3", "twice")):
        with pytest.raises(ConfigError, match=fragment):
            parse_spec(bad)


def test_spread_and_layer_maps():
    assert spread(6, 3) == [0, 2, 4] and spread(4, 2) == [0, 2] and spread(12, 6) == [0, 2, 4, 6, 8, 10]
    assert spread(6, 4) == [0, 1, 3, 4] and spread(6, 1) == [0] and spread(4, 4) == [0, 1, 2, 3]
    # hidden states: each student layer meets the last teacher layer of the block it replaces
    assert hidden_targets(3, 6) == [1, 3, 5] and hidden_targets(2, 4) == [1, 3] and hidden_targets(4, 4) == [0, 1, 2, 3]


# --- students ---------------------------------------------------------------------------------------


def test_layers_student_copies_teacher_layers_0_and_2(teacher, tmp_path):
    module, notes = make_student(teacher, "layers=2")
    t, s = teacher.module, module
    assert type(s) is type(t) and len(s.bert.encoder.layer) == 2 and s.config.num_hidden_layers == 2
    for i, j in ((0, 0), (1, 2)):
        for (name, a), (_, b) in zip(s.bert.encoder.layer[i].state_dict().items(),
                                     t.bert.encoder.layer[j].state_dict().items(), strict=True):
            assert torch.equal(a, b), name
    assert not torch.equal(s.bert.encoder.layer[1].attention.self.query.weight,
                           t.bert.encoder.layer[1].attention.self.query.weight)
    for part in ("bert.embeddings", "bert.pooler", "classifier"):
        for name, a in s.get_submodule(part).state_dict().items():
            assert torch.equal(a, t.get_submodule(part).state_dict()[name]), f"{part}.{name}"
    assert s.config.id2label == t.config.id2label and t.config.num_hidden_layers == 4  # teacher untouched
    assert any("[0, 2]" in n for n in notes) and any("all" in n and "copied" in n for n in notes)
    # Same function as the teacher with layers 1 and 3 skipped: run the teacher's kept layers by hand.
    ids = torch.tensor([[101, 2204, 2307, 102]])
    with torch.no_grad():
        h = t.bert.embeddings(input_ids=ids)
        for j in (0, 2):
            out = t.bert.encoder.layer[j](h)
            h = out[0] if isinstance(out, tuple) else out
        expected = t.classifier(t.bert.pooler(h))
        assert torch.allclose(s.eval()(input_ids=ids).logits, expected, atol=1e-5)
    # The config states the new depth, so save_pretrained / from_pretrained round-trip.
    s.save_pretrained(tmp_path / "s")
    again = load_model(str(tmp_path / "s"))
    assert again.module.config.num_hidden_layers == 2 and len(again.module.bert.encoder.layer) == 2
    for name, tensor in s.state_dict().items():
        assert torch.equal(tensor, again.module.state_dict()[name]), name


def test_hidden_student_is_a_consistent_narrower_config(teacher, tmp_path):
    built = build_student(teacher, "layers=2,hidden=16", seed=0)
    s = built.module
    c = s.config
    assert (c.hidden_size, c.num_attention_heads, c.intermediate_size, c.num_hidden_layers) == (16, 2, 32, 2)
    assert built.details["sliced"] > 0 and built.details["copied"] < built.details["sliced"]
    t = teacher.module
    # weight selection: the leading slice of the teacher's tensors (student layer 1 ← teacher layer 2)
    assert torch.equal(s.bert.embeddings.word_embeddings.weight, t.bert.embeddings.word_embeddings.weight[:, :16])
    assert torch.equal(s.bert.encoder.layer[1].intermediate.dense.weight,
                       t.bert.encoder.layer[2].intermediate.dense.weight[:32, :16])
    assert any("16" in n and "hidden 32" in n for n in built.notes)
    s.save_pretrained(tmp_path / "h")
    again = load_model(str(tmp_path / "h"))
    assert again.module.config.hidden_size == 16 and sum(p.numel() for p in again.module.parameters()) == sum(
        p.numel() for p in s.parameters())
    ids = torch.tensor([[101, 2204, 102]])
    with torch.no_grad():
        assert torch.allclose(s.eval()(input_ids=ids).logits, again.module(input_ids=ids).logits, atol=1e-6)
    ffn_only = make_student(teacher, "ffn=8")[0]
    assert ffn_only.config.intermediate_size == 8 and ffn_only.config.hidden_size == 32


@pytest.mark.parametrize(("spec", "fragment"), [
    ("layers=0", "at least 1"), ("layers=5", "more than the teacher's 4 layers"),
    ("hidden=15", "not divisible by the 2 attention heads"), ("hidden=16,heads=3", "not divisible by the 3"),
    ("depth=2", "unknown student spec key"), ("layers=two", "whole number"),
])
def test_bad_specs_are_clear_config_errors(teacher, spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_student(teacher, spec)


def test_student_with_other_labels_is_a_data_error(teacher, tmp_path):
    three = tiny_bert(tmp_path / "three", layers=1, labels=["a", "b", "c"])
    with pytest.raises(DataError, match=r"label sets differ.*2 classes.*3 classes"):
        make_student(teacher, str(three))
    other = tiny_bert(tmp_path / "other", layers=1, labels=["cold", "hot"])
    with pytest.raises(DataError, match="label sets differ"):
        make_student(teacher, str(other))
    swapped = tiny_bert(tmp_path / "swapped", layers=1, labels=list(reversed(LABELS)))
    with pytest.raises(DataError, match="another order"):
        make_student(teacher, str(swapped))
    same = tiny_bert(tmp_path / "same", layers=1)
    module, notes = make_student(teacher, str(same))
    assert module.config.num_hidden_layers == 1 and "own weights" in notes[0]


def test_specs_on_a_cnn_say_they_do_not_apply(tmp_path):
    config = AutoConfig.for_model("resnet", num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                  layer_type="basic", downsample_in_first_stage=False, num_labels=10)
    torch.manual_seed(0)
    AutoModelForImageClassification.from_config(config).save_pretrained(tmp_path / "cnn")
    cnn = load_model(str(tmp_path / "cnn"))
    with pytest.raises(ConfigError, match="layers=1 needs a transformer"):
        make_student(cnn, "layers=1")
    with pytest.raises(ConfigError, match="hidden= does not apply to 'resnet'"):
        make_student(cnn, "hidden=4")


# --- training ---------------------------------------------------------------------------------------


def _accuracy(module, adapter, features) -> float:
    out = predict(module, adapter, features, 64)
    return float((out.proba.argmax(1) == out.labels).mean())


def _random_student(hidden: int = 16, layers: int = 1):
    tok_vocab = 30522
    config = AutoConfig.for_model("bert", hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                                  intermediate_size=2 * hidden, vocab_size=tok_vocab, max_position_embeddings=128,
                                  num_labels=2)
    torch.manual_seed(1)
    return AutoModelForSequenceClassification.from_config(config)


def test_distill_module_teaches_a_random_student(teacher):
    ds = toy_dataset()
    adapter = make_adapter(teacher, "text-classification", max_length=MAX_LENGTH)
    train, val = adapter.encode(ds.train), adapter.encode(ds.validation)
    student = _random_student()
    before = _accuracy(student, adapter, val)
    cfg = DistillConfig(alpha=0.5, temperature=2.0, train=train_cfg(epochs=4, lr=3e-3, eval_every=4))
    outcome = distill_module(student, teacher.module, adapter, train, val, cfg)
    losses = [p.train_loss for p in outcome.history]
    assert before < 0.7 and outcome.best_value >= 0.95
    assert _accuracy(student, adapter, val) == pytest.approx(outcome.best_value)  # the best state is loaded
    assert losses[-1] < losses[0] - 0.01
    assert not outcome.teacher_online and float(outcome.teacher_cache_flops) > 0
    assert set(outcome.best_state) == set(student.state_dict())
    assert "teacher" not in "".join(outcome.best_state)  # the student's weights only
    # the features the caller passed stay as they were (the cache lives in copies)
    assert TEACHER_KEY not in train[0]


def test_cached_logits_ride_in_the_batch_and_match_an_online_teacher(teacher):
    ds = toy_dataset()
    adapter = make_adapter(teacher, "text-classification", max_length=MAX_LENGTH)
    train, val = adapter.encode(ds.train[:48]), adapter.encode(ds.validation)
    with torch.no_grad():
        logits = [teacher.module.eval()(**{k: v for k, v in adapter.collate([f]).items() if k != "labels"}).logits[0]
                  for f in train[:4]]
    batch = TeacherTargets(adapter).collate(with_teacher_logits(train[:4], logits))
    assert torch.equal(batch[TEACHER_KEY], torch.stack(logits)) and "labels" in batch
    assert TEACHER_KEY not in TeacherTargets(adapter).collate(val[:4])  # validation batches carry no targets

    weights = {}
    for cache in (True, False):
        student = _random_student()
        cfg = DistillConfig(cache_teacher=cache, train=train_cfg(epochs=1, lr=3e-3))
        outcome = distill_module(student, teacher.module, adapter, train, val, cfg)
        assert outcome.teacher_online is (not cache)
        weights[cache] = student.state_dict()
    # The teacher runs in eval mode either way, so cached and online targets are the same numbers.
    for name, tensor in weights[True].items():
        assert torch.allclose(tensor, weights[False][name], atol=1e-4), name
    # a separate teacher encoding (another tokenizer) goes through the same cache
    student = _random_student()
    outcome = distill_module(student, teacher.module, adapter, train, val, DistillConfig(train=train_cfg(epochs=1,
                             lr=3e-3)), teacher_adapter=adapter, teacher_features=train)
    for name, tensor in weights[True].items():
        assert torch.allclose(tensor, student.state_dict()[name], atol=1e-4), name
    with pytest.raises(ConfigError, match="same inputs"):
        distill_module(_random_student(), teacher.module, adapter, train, val,
                       DistillConfig(hidden_states=True, train=train_cfg()), teacher_adapter=adapter,
                       teacher_features=train)


def test_hidden_state_matching_trains_a_projection_that_is_not_saved(teacher):
    ds = toy_dataset()
    adapter = make_adapter(teacher, "text-classification", max_length=MAX_LENGTH)
    train, val = adapter.encode(ds.train), adapter.encode(ds.validation)
    student, _ = make_student(teacher, "layers=2,hidden=16")
    cfg = DistillConfig(hidden_states=True, hidden_weight=1.0, train=train_cfg(epochs=5, lr=5e-3))
    outcome = distill_module(student, teacher.module, adapter, train, val, cfg)
    assert outcome.teacher_online and float(outcome.teacher_cache_flops) == 0
    assert any("teacher layers [1, 3]" in n and "projection 16 → 32" in n for n in outcome.notes)
    assert set(outcome.best_state) == set(student.state_dict())
    assert not any("projection" in k for k in outcome.best_state)
    assert outcome.best_value >= 0.9
    # the teacher's forward is part of each step's counted cost
    plain = distill_module(make_student(teacher, "layers=2,hidden=16")[0], teacher.module, adapter, train, val,
                           DistillConfig(train=train_cfg(epochs=1, max_steps=1)))
    assert float(outcome.flops_per_sample) > float(plain.flops_per_sample)


# --- the API end to end ----------------------------------------------------------------------------


def test_distill_api_end_to_end(teacher_dir, tmp_path):
    ds = toy_dataset()
    out = tmp_path / "student"
    result = distill(str(teacher_dir), "layers=2", ds, DistillConfig(train=train_cfg()), output=out)
    assert result.teacher_cost.layers == 4 and result.student_cost.layers == 2
    assert result.student_cost.seq_len == MAX_LENGTH
    assert 0.45 < result.flops_ratio < 0.55  # two of four layers; embeddings and head cost little
    assert result.params_ratio < 1.0
    t, s = result.teacher_test["accuracy"], result.student_test["accuracy"]
    assert t.ci_low <= t.value <= t.ci_high and s.n == len(ds.test)
    assert result.retained == pytest.approx(s.value / t.value) and s.value >= 0.9
    assert result.training.samples_seen == 2 * len(ds.train)
    assert float(result.teacher_run.saved_flops) == pytest.approx(
        float(result.teacher_run.flops_per_sample) * len(ds.train))
    # the folder loads, evaluates to the reported accuracy, and has the tokenizer and result
    assert (out / "distill_result.json").is_file() and (out / "tokenizer.json").is_file()
    saved = load_model(str(out))
    assert saved.module.config.num_hidden_layers == 2 and saved.module.config.id2label == {0: "negative",
                                                                                            1: "positive"}
    again = evaluate(saved, ds, max_length=MAX_LENGTH)
    assert again.metrics["accuracy"].value == pytest.approx(s.value)
    data = json.loads((out / "distill_result.json").read_text())
    assert data["student_cost"]["layers"] == 2 and data["config"]["alpha"] == 0.5
    from steelyard.distill import DistillResult

    assert DistillResult.from_dict(data).teacher_test["accuracy"].value == pytest.approx(t.value)
    assert result.trained is not None
    in_memory = evaluate(result.trained, ds, max_length=MAX_LENGTH, tokenizer=str(out))
    assert in_memory.metrics["accuracy"].value == pytest.approx(s.value)


def test_distill_api_bad_input(teacher_dir, tmp_path):
    ds = toy_dataset()
    with pytest.raises(DataError, match="label sets differ"):
        distill(str(teacher_dir), str(tiny_bert(tmp_path / "three", layers=1, labels=["a", "b", "c"])), ds,
                DistillConfig(train=train_cfg()))
    five = ds.with_splits()
    five.label_names = ["a", "b", "c", "d", "e"]
    with pytest.raises(DataError, match="predicts 2 classes but the data has 5"):
        distill(str(teacher_dir), "layers=2", five, DistillConfig(train=train_cfg()))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        distill(str(teacher_dir), "layers=2", ds, DistillConfig(train=train_cfg()), output=tmp_path / "file")
    with pytest.raises(ConfigError, match="holds no model"):  # --overwrite never replaces the user's file
        distill(str(teacher_dir), "layers=2", ds, DistillConfig(train=train_cfg()), output=tmp_path / "file",
                overwrite=True)
    digits = load_dataset("digits")
    with pytest.raises(DataError, match="reads text but the data"):
        distill(str(teacher_dir), "layers=2", digits, DistillConfig(train=train_cfg()))


def test_image_teacher_distils_into_fewer_vit_layers(tmp_path):
    digits = load_dataset("digits").subset({"train": 200, "validation": 60, "test": 100})
    config = AutoConfig.for_model("vit", image_size=8, patch_size=2, num_channels=1, hidden_size=32,
                                  num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=10)
    torch.manual_seed(0)
    AutoModelForImageClassification.from_config(config).save_pretrained(tmp_path / "vit")
    cfg = DistillConfig(hidden_states=True, train=train_cfg(epochs=1, lr=3e-3, batch_size=32))
    result = distill(str(tmp_path / "vit"), "layers=1", digits, cfg, output=tmp_path / "vit-student")
    assert result.student_cost.layers == 1 and result.student_cost.seq_len is None
    assert 0.4 < result.flops_ratio < 0.6 and result.student_test["accuracy"].n == 100
    saved = load_model(str(tmp_path / "vit-student"))
    assert saved.module.config.num_hidden_layers == 1
    assert evaluate(saved, digits).metrics["accuracy"].value == pytest.approx(result.student_test["accuracy"].value)


def test_cnn_teacher_distils_into_a_smaller_cnn_model(tmp_path):
    digits = load_dataset("digits").subset({"train": 200, "validation": 60, "test": 100})
    for name, sizes in (("big", [16, 32]), ("small", [8, 8])):
        config = AutoConfig.for_model("resnet", num_channels=1, embedding_size=sizes[0], hidden_sizes=sizes,
                                      depths=[1, 1], layer_type="basic", downsample_in_first_stage=False,
                                      num_labels=10)
        torch.manual_seed(0)
        AutoModelForImageClassification.from_config(config).save_pretrained(tmp_path / name)
    cfg = DistillConfig(train=train_cfg(epochs=1, lr=3e-3, batch_size=32))
    result = distill(str(tmp_path / "big"), str(tmp_path / "small"), digits, cfg, output=tmp_path / "out")
    assert result.student_cost.parameters < result.teacher_cost.parameters and result.flops_ratio < 0.5
    assert result.student_test["accuracy"].n == 100 and not result.teacher_run.online
    assert any("own weights" in n for n in result.student_notes)
    saved = load_model(str(tmp_path / "out"))
    assert saved.module.config.hidden_sizes == [8, 8]
    assert evaluate(saved, digits).metrics["accuracy"].value == pytest.approx(result.student_test["accuracy"].value)
    with pytest.raises(ConfigError, match="token or patch sequences"):  # feature maps have no layer-to-layer match
        distill(str(tmp_path / "big"), str(tmp_path / "small"), digits,
                DistillConfig(hidden_states=True, train=train_cfg(epochs=1)))
