"""The trainer's pluggable objectives, its one launcher's dispatch, and the recipe steps' configs."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM

from steelyard.compression.recipe.steps import DistillStepConfig, FinetuneStepConfig
from steelyard.distill.config import DistillConfig
from steelyard.errors import ConfigError
from steelyard.evaluation.adapters import CausalLMAdapter
from steelyard.training import FinetuneConfig
from steelyard.training.config import OPTIMIZERS
from steelyard.training.dist import DistContext
from steelyard.training.launch import nproc_ignored, process_group
from steelyard.training.loop import LoopInput
from steelyard.training.losses import distillation_loss
from steelyard.training.objectives import (
    TEACHER_KEY,
    CrossEntropy,
    Forward,
    LogitDistillation,
    NextToken,
    task_objective,
)
from steelyard.training.trainer import fit
from tiny_configs import GPT2


def tiny_gpt2() -> nn.Module:
    config = AutoConfig.for_model(**GPT2)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


class CharTokenizer:
    """Characters as token ids (1..), 0 is end-of-sequence and padding: enough for CausalLMAdapter."""

    eos_token_id = 0
    pad_token_id = 0

    def __call__(self, texts, add_special_tokens=False, verbose=False):
        return {"input_ids": [[1 + (ord(c) % 90) for c in t] for t in texts]}


# --- next-token loss -------------------------------------------------------------------------------------------
def test_next_token_equals_the_transformers_loss_and_ignores_padding():
    model = tiny_gpt2().eval()
    ids = torch.randint(1, 100, (3, 12), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        ours = NextToken().loss(Forward(model), batch)
        theirs = model(input_ids=ids, labels=ids).loss
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)

    # Right padding: the padded positions are neither predicted nor targets, so the loss is the one
    # transformers computes with those labels set to -100, and equals the unpadded rows' loss.
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    padded = {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}
    labels = padded["input_ids"].masked_fill(mask == 0, -100)
    with torch.no_grad():
        ours = NextToken().loss(Forward(model), padded)
        theirs = model(**padded, labels=labels).loss
        from_labels = NextToken().loss(Forward(model), {**padded, "labels": labels})
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    assert from_labels.item() == pytest.approx(ours.item(), rel=1e-6)
    counted = 3 * 11 - 4  # 11 predictions per row, 4 of them at or after row 1's padding
    logits = model(**padded).logits
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="sum", ignore_index=-100)
    assert ours.item() == pytest.approx(nll.item() / counted, rel=1e-5)


def test_the_trainer_lowers_the_next_token_loss_on_repeated_text():
    model = tiny_gpt2()
    adapter = CausalLMAdapter(CharTokenizer(), block_size=16)
    from steelyard.data.dataset import Example

    features = adapter.encode([Example(text="the cat sat on the mat. " * 8)])
    batch = adapter.collate(features)
    assert task_objective(adapter.kind) == NextToken()
    with torch.no_grad():
        before = NextToken().loss(Forward(model.eval()), batch).item()
    cfg = FinetuneConfig(epochs=30, lr=3e-3, batch_size=8, warmup_ratio=0.0, weight_decay=0.0)
    fitted = fit(LoopInput(model, adapter, features, features, "perplexity"), cfg)
    with torch.no_grad():
        after = NextToken().loss(Forward(model.eval()), batch).item()
    assert after < before / 3
    assert fitted.best_value == pytest.approx(torch.exp(torch.tensor(after)).item(), rel=1e-3)  # best state restored
    assert float(fitted.cost.flops_per_sample) > 0 and fitted.cost.samples_seen == 30 * len(features)


# --- distillation on logits ----------------------------------------------------------------------------------
def test_logit_distillation_reads_cached_logits_or_runs_the_teacher():
    torch.manual_seed(0)
    student, teacher = nn.Linear(6, 3), nn.Linear(6, 3).eval()
    x, labels = torch.randn(5, 6), torch.tensor([0, 1, 2, 1, 0])
    objective = LogitDistillation(teacher, alpha=0.3, temperature=2.0)
    online = objective.loss(Forward(student, positional=True), {"x": x, "labels": labels})
    with torch.no_grad():
        t_logits = teacher(x)
    cached = objective.loss(Forward(student, positional=True), {"x": x, "labels": labels, TEACHER_KEY: t_logits})
    expected = distillation_loss(student(x), t_logits, labels, alpha=0.3, temperature=2.0)
    assert online.item() == pytest.approx(expected.item(), rel=1e-6)
    assert cached.item() == pytest.approx(expected.item(), rel=1e-6)
    online.backward()
    assert teacher.weight.grad is None and student.weight.grad is not None  # the teacher stays frozen
    hard = LogitDistillation(teacher, alpha=1.0).loss(Forward(student, positional=True), {"x": x, "labels": labels})
    assert hard.item() == pytest.approx(CrossEntropy().loss(Forward(student, positional=True),
                                                            {"x": x, "labels": labels}).item())


# --- extra trainable modules -----------------------------------------------------------------------------------
class _Vectors:
    kind = "classification"
    positional = True

    def encode(self, examples):
        return examples

    def collate(self, features):
        return {"x": torch.stack([f["x"] for f in features]), "_y": torch.stack([f["y"] for f in features]),
                "labels": torch.zeros(len(features), dtype=torch.long)}


class _ProjectedMSE:
    """Regress a projection of the model's output onto targets of another width (like hidden-state matching)."""

    def __init__(self) -> None:
        self.projection = nn.Linear(4, 2)

    def loss(self, model, batch):
        return F.mse_loss(self.projection(model(batch)), batch["_y"])

    def modules(self):
        return [self.projection]


def test_an_objectives_own_modules_train_but_are_not_part_of_the_model():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x = torch.randn(64, 3)
    y = x[:, :2] * 2
    objective = _ProjectedMSE()
    before = objective.projection.weight.detach().clone()
    features = [{"x": x[i], "y": y[i]} for i in range(64)]
    cfg = FinetuneConfig(epochs=30, lr=3e-2, batch_size=16, warmup_ratio=0.0, weight_decay=0.0)
    fitted = fit(LoopInput(model, _Vectors(), features, [], "accuracy", objective=objective), cfg, count_flops=False,
                 start=time.perf_counter())
    assert not torch.equal(before, objective.projection.weight)  # the optimizer saw the projection
    with torch.no_grad():
        assert F.mse_loss(objective.projection(model(x)), y).item() < 0.05
    assert fitted.best_state is None and set(model.state_dict()) == {"weight", "bias"}
    assert fitted.cost.basis == "not counted" and float(fitted.cost.total_flops) == 0


# --- one launcher ----------------------------------------------------------------------------------------------
def test_the_launcher_runs_here_for_one_process_and_launches_for_several(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert process_group(FinetuneConfig()) == DistContext()
    assert process_group(FinetuneConfig(nproc=2)) is None  # launch
    assert nproc_ignored(FinetuneConfig(nproc=4), DistContext(world=2)) is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert nproc_ignored(FinetuneConfig(nproc=4), DistContext(world=2)) == \
        "--nproc 4 ignored: torchrun started 2 processes"
    assert nproc_ignored(FinetuneConfig(nproc=2), DistContext(world=2)) is None


# --- recipe steps use the training configs ----------------------------------------------------------------------
def test_recipe_steps_are_the_training_configs():
    step = FinetuneStepConfig(epochs=2, lr=1e-3, optimizer="sgd", max_steps=7)
    cfg = step.finetune_config(eval_batch_size=32)
    assert cfg == FinetuneConfig(epochs=2, lr=1e-3, optimizer="sgd", max_steps=7, eval_batch_size=32, n_resamples=1)
    d = DistillStepConfig(alpha=0.2, temperature=3.0).distill_config()
    assert d == DistillConfig(alpha=0.2, temperature=3.0, train=DistillStepConfig().finetune_config())
    for name in OPTIMIZERS:  # one optimizer list
        FinetuneStepConfig(optimizer=name)
    with pytest.raises(ConfigError, match=r"finetune: unknown optimizer 'lion'.*adamw, adam, rmsprop, sgd"):
        FinetuneStepConfig(optimizer="lion")
    with pytest.raises(ConfigError, match="distill: alpha must be in"):
        DistillStepConfig(alpha=1.5)
    with pytest.raises(ConfigError, match="finetune: epochs must be at least 1"):
        FinetuneStepConfig(epochs=0)
