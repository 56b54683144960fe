"""LoRA through peft in the one trainer: only the adapters train, the merge gives back the model's own shape."""

from __future__ import annotations

import sys

import pytest
import torch

from steelyard.errors import ConfigError
from steelyard.training.config import DEFAULT_LR, FinetuneConfig
from steelyard.training.lora import MISSING_PEFT, attach, default_targets, parse_targets
from tiny_configs import GPT2, LLAMA_GQA

pytestmark = pytest.mark.usefixtures("one_thread")


def llama(seed: int = 0) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**LLAMA_GQA)).eval()


def ids(batch: int = 2, seq: int = 12) -> torch.Tensor:
    return torch.randint(0, LLAMA_GQA["vocab_size"], (batch, seq), generator=torch.Generator().manual_seed(1))


def test_the_default_targets_are_the_familys_attention_and_ffn_projections():
    from transformers import GPT2Config, GPT2LMHeadModel

    assert default_targets(llama()) == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert set(default_targets(GPT2LMHeadModel(GPT2Config(**GPT2)))) == {"c_attn", "c_proj", "c_fc"}
    assert parse_targets("q_proj+v_proj") == parse_targets("q_proj, v_proj") == ("q_proj", "v_proj")


def test_only_adapters_get_gradients_base_weights_stay_and_the_merge_keeps_keys_shapes_and_outputs():
    model = llama()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    adapters = attach(model, 4, 8.0)
    s = adapters.summary
    assert s.layers == 4 * 7 and s.trainable == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert s.total == sum(v.numel() for v in original.values()) and 0 < s.trainable < s.total / 5
    x = ids()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        model(input_ids=x, labels=x).loss.backward()
        with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
        assert with_grad and all("lora_" in n for n in with_grad)
        optimizer.step()
    state = model.state_dict()
    for key, value in original.items():  # the frozen base (under peft's base_layer) has not moved
        peft_key = key.replace(".weight", ".base_layer.weight") if key not in state else key
        assert torch.equal(state[peft_key], value), key
    with torch.no_grad():
        adapted = model(input_ids=x).logits
    merged = adapters.merge()
    assert merged is model and not hasattr(model, "peft_config")
    after = model.state_dict()
    assert list(after) == list(original) and all(after[k].shape == v.shape for k, v in original.items())
    assert all(p.requires_grad for p in model.parameters())  # as before the adapters froze them
    assert not torch.equal(after["model.layers.0.self_attn.q_proj.weight"],
                           original["model.layers.0.self_attn.q_proj.weight"])  # the trained update is in
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, adapted, atol=1e-5)


def test_fit_with_lora_rank_trains_adapters_and_returns_the_plain_model():
    from steelyard.training.loop import LoopInput
    from steelyard.training.trainer import fit

    class Blocks:
        kind, positional = "lm", False

        def encode(self, examples):
            return examples

        def collate(self, features):
            x = torch.stack([f["input_ids"] for f in features])
            return {"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x}

    model = llama()
    keys = {k: v.shape for k, v in model.state_dict().items()}
    features = [{"input_ids": row} for row in ids(16, 12)]
    with torch.no_grad():
        before = float(model(**Blocks().collate(features)).loss)
    cfg = FinetuneConfig(epochs=1, batch_size=4, max_steps=8, lora_rank=4, progress=False)
    fitted = fit(LoopInput(model, Blocks(), features, features[:4], "perplexity"), cfg, count_flops=True)
    assert fitted.best_step > 0  # the best validation state (adapters only) was restored before the merge
    assert fitted.adapters is not None and fitted.adapters.rank == 4 and fitted.adapters.alpha == 8.0
    assert {k: v.shape for k, v in model.state_dict().items()} == keys and fitted.best_state is None
    with torch.no_grad():
        assert float(model(**Blocks().collate(features)).loss) < before
    assert cfg.learning_rate(10**9) == DEFAULT_LR["lora"]["adamw"]


def test_bad_lora_settings_and_a_missing_peft_are_one_clear_error(monkeypatch):
    with pytest.raises(ConfigError, match="LoRA rank"):
        FinetuneConfig(lora_rank=-1)
    with pytest.raises(ConfigError, match="choose one"):
        FinetuneConfig(lora_rank=4, freeze_encoder=True)
    with pytest.raises(ConfigError, match="no layer"):
        attach(llama(), 4, targets=("nope",))
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ConfigError) as caught:
        attach(llama(), 4)
    assert str(caught.value) == MISSING_PEFT and "steelyard[llm]" in MISSING_PEFT


def test_finetune_with_lora_trains_a_classifiers_adapters_and_its_head_not_its_pooler(tmp_path):
    from steelyard.data import load_dataset
    from steelyard.models import load_model
    from steelyard.training.finetune import finetune
    from text_toys import reviews_csv, tiny_bert

    folder = tiny_bert(tmp_path / "bert", layers=2)
    handle = load_model(str(folder))
    before = {k: v.clone() for k, v in handle.module.state_dict().items()}
    data = load_dataset(str(reviews_csv(tmp_path / "reviews.csv", 60)))
    result = finetune(handle, data, FinetuneConfig(epochs=5, batch_size=8, max_length=16, lora_rank=4, lr=2e-2,
                                                   progress=False, n_resamples=50), output=tmp_path / "out")
    after = result.trained.module.state_dict()
    assert set(after) == set(before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "bert.encoder.layer.0.attention.self.query.weight" in changed  # merged adapter
    assert {"classifier.weight", "classifier.bias"} <= changed  # the head trains in full
    assert not any(k.startswith(("bert.pooler", "bert.embeddings")) for k in changed)
    assert any("LoRA rank 4" in n for n in result.notes) and result.test["accuracy"].value > 0.9
    assert not any("lora_" in k for k in load_model(str(tmp_path / "out")).module.state_dict())


def test_the_best_state_snapshot_leaves_frozen_weights_out():
    from steelyard.training.loop import snapshot

    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    assert set(snapshot(model)) == set(model.state_dict()) - {"0.weight"}  # buffers (running stats) are kept
