"""Recipes: parsing, the runner's measured before / after, training steps, saving, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
from steelyard.compression.recipe.result import Verdict
from steelyard.compression.recipe.steps import FinetuneStepConfig
from steelyard.data import load_dataset
from steelyard.errors import ConfigError, DataError
from steelyard.models.loading import load_model
from steelyard.reporting.compress_view import verdict_lines, verdict_text
from steelyard.training.finetune import with_validation
from text_toys import reviews_csv, tiny_bert
from tiny_configs import save_tiny_resnet

FAST = RecipeOptions(batch_size=8, max_length=32, rounds=2, warmup=1, n_resamples=50, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A 4-layer BERT classifier (hidden 64, 4 heads, FFN 128) with a real tokenizer, and a 2-class CSV."""
    root = tmp_path_factory.mktemp("recipe")
    return tiny_bert(root / "model", layers=4, hidden=64, heads=4, ffn=128), reviews_csv(root / "reviews.csv", 160)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# -- parsing ---------------------------------------------------------------------------------------
def test_text_and_yaml_recipes_parse_to_the_same_steps(tmp_path):
    text = parse_recipe("prune:structured,amount=0.5,heads=0.25; finetune:epochs=2,l1=1e-5; quantize:int8-dynamic")
    file = tmp_path / "recipe.yaml"
    file.write_text("steps:\n  - prune:structured: {amount: 0.5, heads: 0.25}\n  - finetune: {epochs: 2, l1: 1e-5}\n"
                    "  - quantize:int8-dynamic\n")
    assert parse_recipe(str(file)) == text
    assert [s.name for s in text.steps] == ["prune:structured", "finetune", "quantize:int8-dynamic"]
    assert text.steps[1].config == FinetuneStepConfig(epochs=2, l1=1e-5)
    assert parse_recipe(text.text) == text  # the canonical text parses back to the same recipe
    assert text.needs_data and not parse_recipe("quantize:int8-dynamic").needs_data


@pytest.mark.parametrize(("recipe", "words"), [
    ("prune:sideways", ["unknown recipe step 'prune:sideways'", "prune:structured", "finetune", "distill"]),
    ("prune:structured,amount=1.5", ["amount must be in [0, 1)"]),
    ("prune:unstructured,amount=0", ["amount must be in (0, 1)"]),
    ("prune:structured,depth=2", ["unknown parameter 'depth'", "valid parameters: amount, heads"]),
    ("finetune:epochs=two", ["epochs must be a int"]),
    ("quantize:int8-dynamic; finetune", ["must be the last step", "qat=true"]),
    ("quantize:fp16; quantize:int8-dynamic", ["quantizes twice"]),
    ("  ;  ", ["the recipe is empty"]),
    ("missing.yaml", ["does not exist"]),
])
def test_bad_recipes_name_what_is_valid(recipe, words):
    with pytest.raises(ConfigError) as err:
        parse_recipe(recipe)
    assert all(w in str(err.value) for w in words), str(err.value)


# -- running ---------------------------------------------------------------------------------------
def test_prune_finetune_quantize_measures_before_and_after_and_leaves_the_original(tiny, tmp_path):
    model, data = tiny
    handle = load_model(str(model))
    original = state(handle.module)
    dataset = load_dataset(str(data))
    result = run_recipe(handle, parse_recipe("prune:structured,amount=0.5,heads=0.5; finetune:epochs=1,lr=1e-3; "
                                             "quantize:int8-dynamic"), dataset, FAST)
    assert all(torch.equal(original[k], v) for k, v in handle.module.state_dict().items())
    # Exact parameter change: per layer, FFN 128 → 64 neurons and 4 → 2 heads of size 16 (hidden 64).
    per_layer = (64 * 64 + 64 + 64 * 64) + 3 * (32 * 64 + 32) + (64 * 32)  # FFN in/out weights+bias, q/k/v, out
    assert result.before.params - result.after.params == 4 * per_layer
    assert [s.name for s in result.steps] == ["prune:structured", "finetune", "quantize:int8-dynamic"]
    n_train = len(with_validation(dataset, 0)[0].train)
    assert result.steps[1].train_steps == math.ceil(n_train / 16) and result.steps[1].validation is not None
    assert result.size_ratio > 3.0  # float32 → int8 codes (+ scales), and fewer weights
    assert result.after.flops_note and 0.4 < result.flops_ratio < 0.8
    assert 0 < result.after.activation_peak < result.before.activation_peak  # thinner layers, smaller activations
    assert result.after.peak_memory == result.after.bytes + result.after.activation_peak
    assert result.speedup is not None and result.speedup > 0
    assert result.before.latency.runs == result.after.latency.runs == 2
    acc = result.after.headline
    assert acc.name == "accuracy" and acc.ci_low <= acc.value <= acc.ci_high and acc.n == len(dataset.test)
    assert result.metric_drop == pytest.approx((result.before.headline.value - acc.value) * 100)
    assert 0.0 <= result.after.agreement <= 1.0 and result.fidelity is not None
    (speed,) = [v for v in result.verdicts() if v.kind == "speed"]
    assert speed.value == pytest.approx(result.speedup)
    # Two rounds give no interval worth a claim: the verdict must not call it faster or slower.
    assert result.speed is not None and result.speed.rounds == 2 and speed.outcome == "not significant"
    assert verdict_text(speed).startswith("not significantly faster")
    assert result.to_dict()["speedup_ci"] == [result.speed.ci_low, result.speed.ci_high]
    assert set(result.changes) == set(result.after.metrics)  # every metric tested paired
    (metric,) = [v for v in result.verdicts() if v.kind == "metric"]
    assert metric.p_value == result.changes["accuracy"].p_value and metric.test == "mcnemar-exact"
    assert verdict_lines(result.to_dict()) == [verdict_text(v) for v in result.verdicts()]


def test_saved_recipe_model_loads_back_and_predicts_the_same(tiny, tmp_path):
    from steelyard.compression import load_compressed

    model, data = tiny
    handle = load_model(str(model))
    result = run_recipe(handle, parse_recipe("prune:layers,amount=0.5; quantize:int8-dynamic"), load_dataset(str(data)),
                        FAST)
    out = result.save(tmp_path / "light", preprocessing_from=model)
    assert (out / "tokenizer.json").is_file() and result.after.file_bytes > 0
    again = load_compressed(out)
    inputs = handle.inputs
    with torch.inference_mode():
        a = result.compressed_handle.module(**inputs).logits
        b = again.module(**inputs).logits
    assert torch.allclose(a, b)


def test_recovery_training_learns_the_task(tiny):
    model, data = tiny
    result = run_recipe(load_model(str(model)), parse_recipe("prune:layers,amount=0.5; finetune:epochs=6,lr=3e-3"),
                        load_dataset(str(data)), FAST)
    assert result.before.headline.value <= 0.7  # a random model
    assert result.after.headline.value >= 0.9  # the words decide the label


def test_finetune_keeps_pruned_zeros_and_gradual_pruning_reaches_its_target(tiny):
    model, data = tiny
    dataset = load_dataset(str(data))
    kept = run_recipe(load_model(str(model)), parse_recipe("prune:unstructured,amount=0.6; finetune:epochs=1,lr=1e-3"),
                      dataset, FAST)
    pruned = kept.steps[0].params_after - kept.compressed.nonzero_after
    assert pruned >= 0.59 * sum(m.weight.numel() for n, m in load_model(str(model)).module.named_modules()
                                if type(m) is torch.nn.Linear and not n.startswith("classifier"))
    assert any("zeros of earlier pruning" in n for n in kept.steps[1].notes)
    gradual = run_recipe(load_model(str(model)), parse_recipe("finetune:epochs=2,lr=1e-3,prune_to=0.5"), dataset, FAST)
    layers = [m for n, m in gradual.compressed_handle.module.named_modules()
              if type(m) is torch.nn.Linear and not n.startswith("classifier")]
    zeros = sum(int((m.weight == 0).sum()) for m in layers) / sum(m.weight.numel() for m in layers)
    assert zeros == pytest.approx(0.5, abs=0.01)
    (sparse,) = [v for v in gradual.verdicts() if v.kind == "sparsity"]
    assert sparse.share == pytest.approx(sparse.value / gradual.after.params)
    assert "sparse, not smaller" in verdict_text(sparse)


def test_l1_penalty_shrinks_the_weights(tiny):
    model, data = tiny
    dataset = load_dataset(str(data))

    def l1_after(recipe: str) -> float:
        r = run_recipe(load_model(str(model)), parse_recipe(recipe), dataset,
                       RecipeOptions(batch_size=8, max_length=32, measure_latency=False, n_resamples=10))
        mods = r.compressed_handle.module.named_modules()
        return sum(float(m.weight.abs().sum()) for n, m in mods if type(m) is torch.nn.Linear and "classifier" not in n)

    plain = l1_after("finetune:epochs=1,lr=1e-3,optimizer=sgd")
    assert l1_after("finetune:epochs=1,lr=1e-3,optimizer=sgd,l1=1e-4") < plain


def test_recipe_without_data_measures_size_flops_and_speed_only(tiny):
    model, _ = tiny
    result = run_recipe(load_model(str(model)), parse_recipe("quantize:int8-dynamic"), None, FAST)
    assert result.after.headline is None and result.metric_drop is None and result.speedup is not None
    assert result.after.flops == result.before.flops  # the float model's count, said so
    with pytest.raises(DataError, match="finetune needs data"):
        run_recipe(load_model(str(model)), parse_recipe("prune:layers,amount=0.5; finetune"), None, FAST)


def test_cnn_recipe_without_data_prunes_channels_and_counts_fewer_flops():
    from compression_toys import cnn_handle

    handle = cnn_handle()
    result = run_recipe(handle, parse_recipe("prune:structured,amount=0.5,round_to=1; low-rank:svd"), None, FAST)
    assert result.after.params < result.before.params and result.flops_ratio < 0.75
    assert result.timing["shape"][0] == 8 and result.fidelity is not None


def test_distill_and_quantization_aware_steps_run_in_a_recipe(tiny):
    model, data = tiny
    dataset = load_dataset(str(data))
    distilled = run_recipe(load_model(str(model)), parse_recipe("prune:layers,amount=0.5; distill:epochs=2,lr=3e-3"),
                           dataset, FAST)
    assert distilled.steps[1].train_steps > 0 and "distilled from the original model" in distilled.steps[1].notes[0]
    assert distilled.after.params < distilled.before.params
    qat = run_recipe(load_model(str(model)), parse_recipe("finetune:epochs=1,lr=1e-3,qat=true; quantize:int8-dynamic"),
                     dataset, FAST)
    assert any("quantization-aware" in n for n in qat.steps[0].notes)
    # the fine-tuned model is plain again (no fake-quant left) and quantizes like any other
    assert qat.steps[1].fidelity is not None and qat.steps[1].fidelity.cosine > 0.99


def test_training_that_diverges_is_a_failure_not_a_score(tiny):
    from steelyard.errors import CompressionError

    model, data = tiny
    with pytest.raises(CompressionError, match="training diverged"):
        run_recipe(load_model(str(model)), parse_recipe("finetune:epochs=1,lr=1e30,optimizer=sgd"),
                   load_dataset(str(data)), FAST)


def test_image_recipe_prunes_channels_and_recovers_on_digits(tmp_path):

    save_tiny_resnet(tmp_path / "resnet")
    result = run_recipe(load_model(str(tmp_path / "resnet")),
                        parse_recipe("prune:structured,amount=0.5,round_to=1; finetune:epochs=3,lr=3e-3"),
                        load_dataset("digits"), FAST)
    assert result.after.params < result.before.params and result.flops_ratio < 0.8
    assert result.after.headline.value > 0.5  # 10 classes: trained from a random start, far above chance


def test_recipes_on_the_same_model_and_data_encode_and_score_the_original_once(tiny, monkeypatch):
    from steelyard.compression.recipe import data as recipe_data
    from steelyard.compression.recipe import runner

    model, data = tiny
    handle, dataset = load_model(str(model)), load_dataset(str(data))
    calls = {"encode": 0, "quality": 0}
    real_encode, real_quality = recipe_data.encode_data, runner.quality

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(recipe_data, "encode_data", counting("encode", real_encode))
    monkeypatch.setattr(runner, "quality", counting("quality", real_quality))
    first = run_recipe(handle, parse_recipe("quantize:int8-dynamic"), dataset, FAST)
    second = run_recipe(handle, parse_recipe("prune:layers,amount=0.5"), dataset, FAST)
    assert calls == {"encode": 1, "quality": 3}  # the original scored once, each candidate once
    assert first.before.metrics == second.before.metrics
    run_recipe(handle, parse_recipe("prune:layers,amount=0.5"), load_dataset(str(data)), FAST)  # another dataset
    assert calls["encode"] == 2


def test_verdict_wording_and_old_stored_sentences():
    assert verdict_text(Verdict("speed", "faster", 1.8421, ci_low=1.7, ci_high=1.95, rounds=10)) == (
        "1.84x faster (95% CI 1.70–1.95, median latency, interleaved with the original over 10 rounds in this run)")
    assert verdict_text(Verdict("speed", "not significant", 1.02, ci_low=0.97, ci_high=1.08, rounds=10)) == (
        "not significantly faster: 1.02x the original's speed (95% CI 0.97–1.08, the interval includes 1.0; "
        "10 interleaved rounds)")
    assert verdict_text(Verdict("speed", "same", 0.99)) == (
        "not faster: 0.99x the original's speed (within timing noise)")  # a run stored before the interval
    assert verdict_text(Verdict("speed", "slower", 0.5, ci_low=0.45, ci_high=0.55, rounds=10)) == (
        "slower: 0.50x the original's speed (95% CI 0.45–0.55, interleaved with the original over 10 rounds)")
    assert verdict_text(Verdict("size", "smaller", 3.9)) == "3.90x smaller in memory"
    assert verdict_text(Verdict("size", "same", 1.0)) == "not smaller in memory (1.00x)"
    assert verdict_text(Verdict("sparsity", "sparse", 12345, share=0.5)).startswith(
        "12,345 more weights are zero (50% of the model): it is sparse, not smaller")
    assert verdict_text(Verdict("metric", "dropped", 6.306, metric="accuracy", ci_low=-8.8, ci_high=-3.8,
                                p_value=2.5e-7, test="mcnemar-exact", only_before=30, only_after=2, n=444)) == (
        "accuracy dropped 6.31 points (McNemar p<0.001, 32 of 444 examples changed: 30 now wrong, 2 now right; "
        "95% CI of the change -8.80 to -3.80 points)")
    assert verdict_text(Verdict("metric", "unchanged", 0.0, metric="accuracy")) == "accuracy unchanged"
    stored = {"verdicts": ["2.00x faster (an old run)", {"kind": "metric", "outcome": "rose", "value": 0.5,
                                                          "share": None, "metric": "f1"}]}
    assert verdict_lines(stored) == ["2.00x faster (an old run)",
                                     "f1 rose 0.50 points (stored without a paired test)"]
