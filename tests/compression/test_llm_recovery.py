"""Recovery of a compressed causal LM: distillation on the teacher's logits, LoRA, and the recipe
drop layers -> distill (LoRA) -> int4 through the library and the CLI."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from llm_toys import saved_llama, weather_text

from cli_helpers import one_line_error, steelyard
from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
from steelyard.data import load_dataset
from steelyard.distill.config import DistillConfig
from steelyard.distill.train import distill_module
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.predictor import make_adapter
from steelyard.families import drop_layers, find_blocks
from steelyard.models import LoadConfig, load_model
from steelyard.training.config import FinetuneConfig
from steelyard.training.losses import next_token_soft_loss
from steelyard.training.objectives import Forward, LogitDistillation

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = RecipeOptions(max_length=16, batch_size=8, eval_batch_size=16, n_resamples=100, measure_latency=False,
                     calibration_batches=4, progress=False)  # fmt: skip
RECIPE = ("prune:layers-angular,amount=0.5; distill:epochs=3,lr=0.01,alpha=0.5,temperature=2,lora_rank=4; "
          "quantize:int4-weight-only")


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    """A tiny Llama whose next-token distributions are peaked (a random init is near-uniform), and text."""
    root = tmp_path_factory.mktemp("llm-recovery")
    folder = saved_llama(root / "llama")
    handle = load_model(str(folder), LoadConfig(task="causal-lm"))
    with torch.no_grad():
        handle.module.lm_head.weight.mul_(40.0)
    handle.module.save_pretrained(folder)
    handle = load_model(str(folder), LoadConfig(task="causal-lm"))
    return handle, load_dataset(str(weather_text(root / "weather.txt")), "causal-lm"), folder


def student_of(teacher) -> torch.nn.Module:
    module = copy.deepcopy(teacher.module)
    drop_layers(module, find_blocks(module), [0, 2], module.config)
    return module


def mean_kl(student: torch.nn.Module, teacher: torch.nn.Module, adapter, features) -> float:
    """Mean KL(teacher ‖ student) per predicted token (T = 1) on ``features``."""
    batch = adapter.collate(features)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        s, t = student.eval()(**inputs).logits, teacher.eval()(**inputs).logits
    return float(next_token_soft_loss(s, t, batch["labels"], 1.0))


def test_distilling_a_dropped_llama_lowers_its_loss_and_its_kl_to_the_teacher(llm):
    teacher, text, _ = llm
    adapter = make_adapter(teacher, "causal-lm", max_length=16)
    train, val = adapter.encode(text.train), adapter.encode(text.validation or text.test)
    student = student_of(teacher)
    objective = LogitDistillation(teacher.module, alpha=0.0, temperature=2.0, causal=True)
    probe = adapter.collate(train[:8])
    kl_before = mean_kl(student, teacher.module, adapter, val)
    with torch.no_grad():
        loss_before = float(objective.loss(Forward(student), probe))
    cfg = DistillConfig(alpha=0.0, temperature=2.0, train=FinetuneConfig(epochs=2, lr=3e-3, batch_size=8,
                                                                         max_steps=10, progress=False))
    outcome = distill_module(student, teacher.module, adapter, train, val, cfg, metric="perplexity")
    assert outcome.teacher_online and outcome.teacher_cache_flops == 0  # full-vocabulary logits are never cached
    assert any("computed on every step, not cached" in n for n in outcome.notes)
    assert outcome.steps == 10 and not teacher.module.training
    with torch.no_grad():
        loss_after = float(objective.loss(Forward(student.eval()), probe))
    kl_after = mean_kl(student, teacher.module, adapter, val)
    assert loss_after < 0.7 * loss_before
    assert kl_after < 0.7 * kl_before


def test_a_student_with_another_vocabulary_is_refused(llm):
    teacher, text, _ = llm
    adapter = make_adapter(teacher, "causal-lm", max_length=16)
    student = student_of(teacher)
    student.resize_token_embeddings(student.config.vocab_size + 8)
    cfg = DistillConfig(train=FinetuneConfig(max_steps=1, progress=False))
    with pytest.raises(DataError, match="vocabularies differ"):
        distill_module(student, teacher.module, adapter, adapter.encode(text.train), [], cfg, metric="perplexity")


def test_drop_distill_with_lora_then_int4_recovers_perplexity(llm):
    handle, text, _ = llm
    keys = {k: v.shape for k, v in handle.module.state_dict().items()}
    dropped = run_recipe(handle, parse_recipe("prune:layers-angular,amount=0.5"), text, FAST)
    result = run_recipe(handle, parse_recipe(RECIPE), text, FAST)
    assert [s.name for s in result.steps] == ["prune:layers-angular", "distill", "quantize:int4-weight-only"]
    notes = " | ".join(result.steps[1].notes)
    assert "distilled from the original model (alpha 0.5, temperature 2.0)" in notes
    assert "LoRA rank 4 (alpha 8)" in notes and "trainable parameters" in notes and "merged back" in notes
    assert "not cached" in notes
    # the student recovers towards the teacher: perplexity after distillation + int4 below the dropped model's
    assert result.after.headline.value < dropped.after.headline.value
    assert result.after.bytes < result.before.bytes
    assert {k: v.shape for k, v in handle.module.state_dict().items()} == keys  # the original is never modified


def test_lora_recovery_leaves_a_plain_model_that_int4_quantizes(llm):
    handle, text, _ = llm
    result = run_recipe(handle, parse_recipe("prune:layers-angular,amount=0.5; finetune:epochs=1,lr=0.01,lora_rank=2,"
                                             "lora_targets=q_proj+v_proj"), text, FAST)
    module = result.compressed.handle.module
    assert not any("lora_" in k or "base_layer" in k for k in module.state_dict())
    assert isinstance(module.model.layers[0].self_attn.q_proj, torch.nn.Linear)
    assert "on q_proj+v_proj (4 layers)" in " ".join(result.steps[1].notes)


def test_lora_with_qat_or_gradual_pruning_is_refused():
    with pytest.raises(ConfigError, match="lora_rank trains adapters"):
        parse_recipe("finetune:lora_rank=4,qat=true")
    with pytest.raises(ConfigError, match="LoRA rank"):
        parse_recipe("distill:lora_rank=-2")


def test_the_recipe_runs_from_the_cli_with_yaml_and_saves_a_folder(llm, tmp_path, capsys):
    _, _, folder = llm
    text = weather_text(tmp_path / "weather.txt")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("steps:\n" + "".join(f"  - \"{step.strip()}\"\n" for step in RECIPE.split(";")))
    out, js = tmp_path / "light", tmp_path / "c.json"
    code = steelyard("compress", folder, "--recipe", recipe, "--data", text, "--task", "causal-lm", "--output", out,
                     "--json", js, "--max-length", "16", "--batch-size", "8", "--rounds", "2", "--no-save")
    assert code == 0, capsys.readouterr().err
    d = json.loads(js.read_text())
    assert [s["name"] for s in d["steps"]] == ["prune:layers-angular", "distill", "quantize:int4-weight-only"]
    assert any("LoRA rank 4" in n for n in d["steps"][1]["notes"])
    assert (out / "steelyard_compression.json").is_file()


def test_lora_without_peft_is_one_line_and_exit_2(llm, tmp_path, capsys, monkeypatch):
    import sys

    _, _, folder = llm
    monkeypatch.setitem(sys.modules, "peft", None)
    text = weather_text(tmp_path / "weather.txt")
    code = steelyard("compress", folder, "--recipe", "distill:epochs=1,lora_rank=4", "--data", text, "--task",
                     "causal-lm", "--max-length", "16", "--batch-size", "8", "--rounds", "1", "--no-save")
    assert code == 2
    one_line_error(capsys, "pip install 'steelyard[llm]'")


def test_the_distill_verb_distils_a_causal_lm_into_fewer_layers(llm, tmp_path, capsys):
    _, _, folder = llm
    text = weather_text(tmp_path / "weather.txt")
    out, js = tmp_path / "student", tmp_path / "d.json"
    code = steelyard("distill", "--teacher", folder, "--student", "layers=2", "--data", text, "--output", out,
                     "--json", js, "--epochs", "1", "--max-steps", "6", "--lr", "0.003", "--batch-size", "8",
                     "--max-length", "16", "--temperature", "2", "--lora-rank", "4", "--no-save")
    assert code == 0, capsys.readouterr().err
    d = json.loads(js.read_text())
    assert d["metric"] == "perplexity" and "perplexity" in d["student_test"] and "perplexity" in d["teacher_test"]
    assert any("LoRA rank 4" in n for n in d["notes"]) and any("not cached" in n for n in d["notes"])
    student = load_model(str(out), LoadConfig(task="causal-lm"))
    assert student.config.num_hidden_layers == 2 and student.task == "causal-lm"
