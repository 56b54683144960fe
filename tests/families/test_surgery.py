"""Surgery on every family steelyard has a table for: exact parameter deltas, finite outputs, round trips.

Each case is a tiny config (tests/tiny_configs.py: width 32, 4 heads of 8) and the closed-form size
of what a cut removes:

* a head of a BERT-style attention (q, k, v with biases, output without): 3 · (8 · 32 + 8) + 8 · 32 = 1048;
* Llama GQA (4 query heads on 2 kv heads, no biases): removing half the heads removes one kv group —
  2 query heads (q rows + o columns: 2 · 2 · 8 · 32 = 1024) and one kv head (k + v rows: 2 · 8 · 32 = 512);
* an FFN neuron: one row (+ bias) of each input layer and one column of the output layer — 32 + 1 + 32 = 65
  (BERT), 3 · 32 = 96 (gated, no biases), 2 · 32 = 64 (T5);
* an expert of width I: gate_up 2 · I · 32, down 32 · I and its router row 32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import tiny_configs as tc
from steelyard.compression import LayerPruneConfig, StructuredPruneConfig, compress, load_compressed
from steelyard.errors import ConfigError
from steelyard.families import dimensions, find_stacks, unit_stacks
from steelyard.models import ModelHandle

B, S = 2, 12


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _text(**extra: torch.Tensor) -> Callable[[], dict[str, torch.Tensor]]:
    def make() -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(3, 100, (B, S), generator=g)
        return {"input_ids": ids, "attention_mask": torch.ones(B, S, dtype=torch.long), **extra}

    return make


def _ended() -> dict[str, torch.Tensor]:
    """Token ids that end in BART's end-of-sequence token (its classification head reads that position)."""
    inputs = _text()()
    inputs["input_ids"][:, -1] = 2
    return inputs


def _ids() -> dict[str, torch.Tensor]:
    return {"input_ids": torch.randint(3, 100, (B, S), generator=torch.Generator().manual_seed(1))}


def _pixels() -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(1))}


def _seq2seq() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(3, 100, (B, S), generator=g),
            "decoder_input_ids": torch.randint(3, 100, (B, 5), generator=g)}


@dataclass(frozen=True)
class Case:
    name: str
    config_class: str
    model_class: str
    kwargs: dict
    inputs: Callable[[], dict[str, torch.Tensor]]
    task: str
    #: Parameters removed by heads=0.5, by amount=0.5 (round_to=1), and by experts=0.5 (None: no experts).
    heads_delta: int
    ffn_delta: int
    experts_delta: int | None = None
    #: Whether the config states a pruned head count (else steelyard's loader rebuilds it).
    heads_in_config: bool = True

    def build(self) -> ModelHandle:
        import transformers

        torch.manual_seed(0)
        config = getattr(transformers, self.config_class)(**self.kwargs)
        model = getattr(transformers, self.model_class)(config).eval()
        return ModelHandle(f"tiny-{self.name}", "config", self.task, model, self.inputs(), config)


BERT_HEADS = 4 * 2 * 1048  # 4 layers, 2 of 4 heads
BERT_FFN = 4 * 24 * 65  # 4 layers, 24 of 48 neurons
GQA_HEADS = 4 * (1024 + 512)
CASES = [
    Case("bert", "BertConfig", "BertForSequenceClassification", tc.BERT, _text(), "text-classification",
         BERT_HEADS, BERT_FFN, heads_in_config=False),
    Case("roberta", "RobertaConfig", "RobertaForSequenceClassification", tc.ROBERTA, _text(), "text-classification",
         BERT_HEADS, BERT_FFN, heads_in_config=False),
    Case("distilbert", "DistilBertConfig", "DistilBertForSequenceClassification", tc.DISTILBERT, _text(),
         "text-classification", BERT_HEADS, BERT_FFN, heads_in_config=False),
    # c_attn is one Conv1D (q | k | v): a head owns 8 columns in each third; n_inner is 4 · 32 = 128
    Case("gpt2", "GPT2Config", "GPT2LMHeadModel", tc.GPT2_SURGERY, _ids, "causal-lm", BERT_HEADS, 4 * 64 * 65,
         heads_in_config=False),
    Case("llama", "LlamaConfig", "LlamaForCausalLM", tc.LLAMA_GQA, _ids, "causal-lm", GQA_HEADS, 4 * 24 * 96),
    # every FFN is 4 experts of width 24: 12 neurons of each go; two experts of 2 · 24 · 32 + 32 · 24 + 32
    Case("mixtral", "MixtralConfig", "MixtralForCausalLM", tc.MIXTRAL, _ids, "causal-lm", GQA_HEADS,
         4 * 4 * 12 * 96, 4 * 2 * (2 * 24 * 32 + 32 * 24 + 32)),
    # q/k/v biases add 8 per head row block: (2 · 8 · 33) + 2 · (8 · 33) + 2 · 8 · 32 per layer; layers 0, 2, 3 are
    # MoE (4 experts of 16, shared expert of 24), layer 1 dense (40)
    Case("qwen2_moe", "Qwen2MoeConfig", "Qwen2MoeForCausalLM", tc.QWEN2_MOE, _ids, "causal-lm",
         4 * (2 * 8 * 33 + 2 * 8 * 33 + 2 * 8 * 32), 3 * (4 * 8 * 96 + 12 * 96) + 20 * 96,
         3 * 2 * (2 * 16 * 32 + 32 * 16 + 32)),
    Case("vit", "ViTConfig", "ViTForImageClassification", tc.VIT, _pixels, "image-classification",
         BERT_HEADS, BERT_FFN),
    # 6 attention modules (2 encoder self, 2 decoder self, 2 cross; no biases) lose 2 heads of 4 · 8 · 32, and
    # each stack's relative position bias (32 buckets) loses 2 columns; 4 FFNs lose 24 neurons of 64
    Case("t5", "T5Config", "T5ForConditionalGeneration", tc.T5, _seq2seq, "feature-extraction",
         6 * 2 * 4 * 8 * 32 + 2 * 2 * 32, 4 * 24 * 64),
    # like T5's 6 attention modules, with biases (1048 a head); the encoder's and decoder's FFN widths are two keys
    Case("bart", "BartConfig", "BartForSequenceClassification", tc.BART, _ended, "text-classification",
         6 * 2 * 1048, 4 * 24 * 65, heads_in_config=False),
]
IDS = [c.name for c in CASES]


def logits(handle: ModelHandle, module: nn.Module | None = None) -> torch.Tensor:
    with torch.inference_mode():
        return (module or handle.module)(**handle.inputs).logits


def _reload(case: Case, result, tmp_path, plain: bool) -> nn.Module:
    import transformers

    folder = result.save(tmp_path / case.name)
    if plain:
        return getattr(transformers, case.model_class).from_pretrained(folder).eval()
    return load_compressed(folder).module


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_heads_are_cut_with_the_exact_delta_and_reload(case, tmp_path):
    handle = case.build()
    result = compress(handle, StructuredPruneConfig(amount=0.0, heads=0.5))
    assert result.params_before - result.params_after == case.heads_delta
    out = logits(result.handle)
    assert torch.isfinite(out).all()
    stated = [n for n in result.notes if "cannot state" in n]
    assert bool(stated) is not case.heads_in_config
    loaded = _reload(case, result, tmp_path, plain=case.heads_in_config)
    assert n_params(loaded) == result.params_after
    assert torch.allclose(logits(result.handle, loaded), out, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ffn_neurons_are_cut_with_the_exact_delta_and_reload_with_from_pretrained(case, tmp_path):
    handle = case.build()
    result = compress(handle, StructuredPruneConfig(amount=0.5, round_to=1))
    assert result.params_before - result.params_after == case.ffn_delta
    assert not [n for n in result.notes if "cannot state" in n or "load_compressed" in n]
    out = logits(result.handle)
    assert torch.isfinite(out).all()
    loaded = _reload(case, result, tmp_path, plain=True)
    assert n_params(loaded) == result.params_after
    assert torch.allclose(logits(result.handle, loaded), out, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layers_are_dropped_and_reload_with_from_pretrained(case, tmp_path):
    handle = case.build()
    first = find_stacks(handle.module)[0]
    dropped = [i for i in range(len(first)) if i not in ([0, 2] if len(first) == 4 else [0])]
    expected = sum(n_params(first.layers[i]) for i in dropped)
    result = compress(handle, LayerPruneConfig(amount=0.5))
    assert result.params_before - result.params_after == expected
    loaded = _reload(case, result, tmp_path, plain=True)
    assert n_params(loaded) == result.params_after
    assert torch.allclose(logits(result.handle, loaded), logits(result.handle), atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if c.experts_delta is not None], ids=lambda c: c.name)
def test_experts_are_dropped_router_and_top_k_follow(case, tmp_path):
    handle = case.build()
    result = compress(handle, StructuredPruneConfig(amount=0.0, experts=0.5))
    assert result.params_before - result.params_after == case.experts_delta
    config = result.handle.config
    count_key = "num_local_experts" if case.name == "mixtral" else "num_experts"
    assert getattr(config, count_key) == 2 and config.num_experts_per_tok == 2
    assert torch.isfinite(logits(result.handle)).all()
    loaded = _reload(case, result, tmp_path, plain=True)
    assert torch.allclose(logits(result.handle, loaded), logits(result.handle), atol=1e-5)
    # fewer experts than top-k: top-k follows, and the config says so
    fewer = compress(handle, StructuredPruneConfig(amount=0.0, experts=0.75))
    assert getattr(fewer.handle.config, count_key) == 1 and fewer.handle.config.num_experts_per_tok == 1
    assert torch.isfinite(logits(fewer.handle)).all()


def test_a_cut_that_splits_a_kv_group_is_refused():
    handle = CASES[IDS.index("llama")].build()
    with pytest.raises(ConfigError, match=r"whole groups of 2.*heads = 0.5"):
        compress(handle, StructuredPruneConfig(amount=0.0, heads=0.25))


def test_gpt2_keeps_the_kept_heads_in_each_third_of_c_attn():
    handle = CASES[IDS.index("gpt2")].build()
    block = handle.module.transformer.h[0]
    before = block.attn.c_attn.weight.detach().clone()
    scores = torch.tensor([1.0, 5.0, 2.0, 9.0])  # keep heads 1 and 3
    from steelyard.families.surgery import cut, head_set

    stack = unit_stacks(handle.module)[0]
    cut([(head_set(stack.units.attentions[0], block), torch.sort(torch.topk(scores, 2).indices).values)])
    keep = torch.cat([torch.arange(8, 16), torch.arange(24, 32)])
    expected = torch.cat([before[:, third * 32 + keep] for third in range(3)], dim=1)
    assert torch.equal(block.attn.c_attn.weight, expected)
    assert (block.attn.num_heads, block.attn.split_size, block.attn.c_attn.nf) == (2, 16, 48)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_taylor_importance_prunes_every_family(case):
    handle = case.build()
    experts = 0.5 if case.experts_delta is not None else 0.0
    result = compress(handle, StructuredPruneConfig(amount=0.5, heads=0.5, experts=experts, round_to=1,
                                                    importance="taylor", batches=1), data=[handle.inputs])
    expected = case.heads_delta + case.ffn_delta
    if case.name == "mixtral":  # the neurons of the 2 kept experts only
        expected = case.heads_delta + case.experts_delta + 4 * 2 * 12 * 96
    elif case.name == "qwen2_moe":
        expected = case.heads_delta + case.experts_delta + 3 * (2 * 8 * 96 + 12 * 96) + 20 * 96
    assert result.params_before - result.params_after == expected
    assert result.details["taylor_batches"] == 1
    assert torch.isfinite(logits(result.handle)).all()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_students_start_from_spread_teacher_layers(case):
    from steelyard.distill.student import build_student

    teacher = case.build()
    first = find_stacks(teacher.module)[0]
    keep = len(first) // 2
    student = build_student(teacher, f"layers={keep}")
    kept = [0, 2] if len(first) == 4 else [0]
    assert student.kept == kept
    dropped = sum(n_params(first.layers[i]) for i in range(len(first)) if i not in kept)
    assert n_params(student.module) == n_params(teacher.module) - dropped
    student_first = find_stacks(student.module)[0]
    for i, t in enumerate(kept):
        for (name, a), b in zip(student_first.layers[i].state_dict().items(),
                                first.layers[t].state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    with torch.inference_mode():
        assert torch.isfinite(student.module(**teacher.inputs).logits).all()


@pytest.mark.parametrize(("name", "expected"), [
    ("bert", dict(layers=4, heads=4, head_group=1, ffn=48, experts=None)),
    ("gpt2", dict(layers=4, heads=4, head_group=1, ffn=128, experts=None)),
    ("llama", dict(layers=4, heads=4, head_group=2, ffn=48, experts=None)),
    ("mixtral", dict(layers=4, heads=4, head_group=2, ffn=24, experts=4, top_k=2)),
    ("t5", dict(layers=2, heads=4, head_group=1, ffn=48, experts=None)),
])
def test_dimensions_say_what_a_model_can_lose(name, expected):
    dims = dimensions(CASES[IDS.index(name)].build().module)
    assert {k: getattr(dims, k) for k in expected} == expected
    assert dims.head_fractions([0.0, 0.25, 0.5]) == ([0.0, 0.5] if dims.head_group == 2 else [0.0, 0.25, 0.5])


def test_moe_layer_patterns_are_renumbered_when_layers_go(tmp_path):
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    handle = CASES[IDS.index("qwen2_moe")].build()
    result = compress(handle, LayerPruneConfig(amount=0.5))  # keeps 0 and 2: both MoE
    assert result.handle.config.mlp_only_layers == []
    config = Qwen2MoeConfig(**{**tc.QWEN2_MOE, "mlp_only_layers": [], "decoder_sparse_step": 2})  # 1 and 3 MoE
    torch.manual_seed(0)
    model = Qwen2MoeForCausalLM(config).eval()
    sparse = ModelHandle("qwen-step", "config", "causal-lm", model, _ids(), config)
    dropped = compress(sparse, LayerPruneConfig(amount=0.5, strategy="drop-last"))  # keeps 0 (dense) and 1 (MoE)
    assert (dropped.handle.config.decoder_sparse_step, dropped.handle.config.mlp_only_layers) == (1, [0])
    loaded = Qwen2MoeForCausalLM.from_pretrained(dropped.save(tmp_path / "q")).eval()
    assert n_params(loaded) == dropped.params_after


@pytest.mark.parametrize(("name", "heads", "experts"), [
    ("bert", [0.0, 0.25, 0.5, 0.75], False), ("llama", [0.0, 0.5], False), ("mixtral", [0.0, 0.5], True),
])
def test_the_optimize_space_offers_only_the_models_dimensions(name, heads, experts):
    from steelyard.search.optimize import builtin_space

    handle = CASES[IDS.index(name)].build()
    space = builtin_space(handle)
    choices = {p.name: list(p.choices) for p in space.params}
    assert choices["heads"] == heads and ("experts" in choices) is experts
    assert ("experts={experts}" in space.recipe) is experts
    for share in heads[1:]:  # every offered head share is a cut the model accepts
        assert compress(handle, StructuredPruneConfig(amount=0.0, heads=share)).params_after < n_params(handle.module)


def test_narrower_students_of_a_gqa_teacher_keep_its_group_size_and_head_size_rule():
    from steelyard.distill.student import build_student

    teacher = CASES[IDS.index("llama")].build()  # 4 query heads on 2 kv heads, head_dim 8 = 32 / 4
    student = build_student(teacher, "heads=2")
    config = student.module.config
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (2, 1, 16)
    narrow = build_student(teacher, "hidden=16").module.config
    assert (narrow.hidden_size, narrow.num_key_value_heads, narrow.head_dim) == (16, 2, 4)
    with torch.inference_mode():
        assert torch.isfinite(student.module(**teacher.inputs).logits).all()
    with pytest.raises(ConfigError, match="multiple of 2"):
        build_student(teacher, "heads=1")  # half a group


def test_experts_on_a_dense_model_are_not_applicable():
    from steelyard.compression.base import NotApplicableError

    with pytest.raises(NotApplicableError, match="no experts"):
        compress(CASES[IDS.index("llama")].build(), StructuredPruneConfig(amount=0.0, experts=0.5))
