"""Architecture knowledge in one place: blocks per family, unit paths, config aliases, one spread rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compression_toys import outputs, tiny_bert
from steelyard.compression import LayerPruneConfig, StructuredPruneConfig, compress
from steelyard.compression.pruning.layers import kept_layers
from steelyard.distill.student import build_student
from steelyard.errors import ConfigError
from steelyard.families import (
    BERT_UNITS,
    GENERIC,
    Family,
    Stack,
    config_int,
    config_number,
    family_of,
    find_blocks,
    find_stacks,
    find_units,
    max_positions,
    register_family,
    spread,
)
from steelyard.families import registry as family_registry
from steelyard.models import InputSpec, ModelHandle
from steelyard.models.tasks import make_inputs

#: A tiny DistilBERT: 4 blocks of width 32 (4 heads) with an FFN of 37.
DISTILBERT = dict(vocab_size=100, dim=32, n_layers=4, n_heads=4, hidden_dim=37, max_position_embeddings=64,
                  num_labels=3)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_distilbert() -> ModelHandle:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    config = DistilBertConfig(**DISTILBERT)
    model = DistilBertForSequenceClassification(config).eval()
    inputs = make_inputs(config, "text-classification", InputSpec(batch_size=2, seq_len=12), "cpu")
    return ModelHandle("tiny-distilbert", "config", "text-classification", model, inputs, config)


def test_spread_keeps_evenly_spaced_layers_from_the_first():
    assert spread(12, 6) == [0, 2, 4, 6, 8, 10]  # DistilBERT's initialisation from BERT-base
    assert spread(6, 4) == [0, 1, 3, 4]  # floor(i * 6 / 4), not round (which would keep 0, 2, 3, 4)
    assert spread(12, 5) == [0, 2, 4, 7, 9]
    assert spread(5, 5) == [0, 1, 2, 3, 4] and spread(7, 1) == [0]
    for bad in (0, 8):
        with pytest.raises(ConfigError, match="cannot keep"):
            spread(7, bad)


def test_pruning_and_distillation_keep_the_same_layers():
    teacher = tiny_bert(num_hidden_layers=6)
    for keep in (1, 2, 3, 4, 5):
        pruned = compress(tiny_bert(num_hidden_layers=6), LayerPruneConfig(amount=1 - keep / 6))
        student = build_student(teacher, f"layers={keep}")
        assert pruned.handle.config.num_hidden_layers == keep
        assert student.kept == spread(6, keep) == kept_layers(6, 1 - keep / 6, "spread")
        assert [n for n in pruned.notes if n.startswith("layers:")] == [
            f"layers: 6 → {keep} (kept {spread(6, keep)}, strategy spread)"
        ]


def test_layer_pruning_on_distilbert_round_trips_through_from_pretrained(tmp_path):
    handle = tiny_distilbert()
    d, ffn = DISTILBERT["dim"], DISTILBERT["hidden_dim"]
    # one block: q, k, v, out projections; two LayerNorms; the FFN pair
    one_block = 4 * (d * d + d) + 2 * 2 * d + (d * ffn + ffn) + (ffn * d + d)
    assert n_params(handle.module.distilbert.transformer.layer[0]) == one_block
    result = compress(handle, LayerPruneConfig(amount=0.5))
    assert result.details["kept"] == [0, 2]
    assert result.params_before - result.params_after == 2 * one_block
    assert len(result.handle.module.distilbert.transformer.layer) == 2
    assert result.handle.config.n_layers == 2
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(result.save(tmp_path / "distil")).eval()
    assert loaded.config.n_layers == 2 and n_params(loaded) == result.params_after
    with torch.inference_mode():
        assert torch.equal(loaded(**result.handle.inputs).logits, outputs(result.handle))


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=3, n_head=4, vocab_size=100, n_positions=64))


def _llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, intermediate_size=48, vocab_size=100))


def test_causal_lms_find_their_blocks():
    gpt2, llama = _gpt2(), _llama()
    found = find_blocks(gpt2)
    assert (found.path, len(found), found.family.name) == ("transformer.h", 3, "gpt2")
    assert found.layers is gpt2.transformer.h and found.count_key(gpt2.config) == "num_hidden_layers"
    found = find_blocks(llama)
    assert (found.path, len(found), found.family.name) == ("model.layers", 2, "llama")
    assert found.layers is llama.model.layers
    assert find_units(gpt2)[0].name == "gpt2" and find_units(llama)[0].name == "llama"  # their own unit tables


def test_encoder_decoder_stacks_are_found_separately():
    from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

    t5 = T5ForConditionalGeneration(T5Config(d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3,
                                             num_heads=4, vocab_size=100))
    assert [(s.path, len(s), s.stack.role, s.count_key(t5.config)) for s in find_stacks(t5)] == [
        ("encoder.block", 2, "encoder", "num_layers"), ("decoder.block", 3, "decoder", "num_decoder_layers")]
    bart = BartForConditionalGeneration(BartConfig(d_model=32, encoder_layers=3, decoder_layers=2,
                                                   encoder_attention_heads=4, decoder_attention_heads=4,
                                                   encoder_ffn_dim=48, decoder_ffn_dim=48, vocab_size=100))
    assert [(s.path, len(s), s.count_key(bart.config)) for s in find_stacks(bart)] == [
        ("model.encoder.layers", 3, "encoder_layers"), ("model.decoder.layers", 2, "decoder_layers")]
    assert find_blocks(bart).path == "model.encoder.layers"  # the first stack is the encoder


def test_bert_and_head_only_classifiers_expose_their_units():
    from steelyard.evaluation.heads import LinearHead, PooledClassifier

    bert = tiny_bert().module
    assert find_blocks(bert).path == "bert.encoder.layer"
    units, layers = find_units(bert)
    assert units is BERT_UNITS and layers == list(bert.bert.encoder.layer)
    assert units.ffn.inputs == ("intermediate.dense",) and units.ffn.config_key == "intermediate_size"
    assert units.head_count(layers[0]) == 4 and units.head_size(layers[0]) == 16
    head_only = PooledClassifier(bert.bert, LinearHead(64, 3))
    found = find_blocks(head_only)
    assert found.path == "encoder.encoder.layer" and found.layers is bert.bert.encoder.layer
    assert find_units(head_only)[1] == layers
    handle = tiny_bert()
    pruned = compress(handle.with_module(PooledClassifier(handle.module.bert, LinearHead(64, 3)).eval()),
                      StructuredPruneConfig(amount=0.5, heads=0.5))
    first = pruned.handle.module.encoder.encoder.layer[0]
    assert first.intermediate.dense.out_features == 64 and first.attention.self.num_attention_heads == 2
    assert first.attention.self.query.out_features == 32 == first.attention.self.all_head_size


def test_units_match_only_their_own_blocks():
    layer = tiny_bert().module.bert.encoder.layer[0]
    assert BERT_UNITS.matches(layer) and not BERT_UNITS.matches(nn.Linear(2, 2))
    layer.intermediate.dense = nn.Identity()  # an FFN that is no Linear any more
    assert not BERT_UNITS.matches(layer)


def test_family_lookup_by_model_type_class_and_fallback():
    bert = tiny_bert().module
    assert family_of(bert).name == "bert" and family_of(bert.config).name == "bert"
    bert.config.model_type = "not-a-known-type"
    assert family_of(bert).name == "bert"  # by class: BertForSequenceClassification's base is BertModel
    stack = nn.Module()
    stack.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert family_of(stack) is GENERIC
    assert find_blocks(stack).path == "layers" and find_blocks(nn.Linear(2, 2)) is None


def test_a_registered_family_is_found_first(monkeypatch):
    monkeypatch.setattr(family_registry, "FAMILIES", list(family_registry.FAMILIES))

    class Tower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.floors = nn.ModuleList([nn.Linear(2, 2) for _ in range(4)])

    register_family(Family("tower", ("tower",), (Stack("floors"),), ("Tower",)))
    found = find_blocks(Tower())
    assert (found.path, len(found), found.family.name) == ("floors", 4, "tower")
    with pytest.raises(ConfigError, match="already registered"):
        register_family(Family("tower", (), ()))


def test_config_aliases_and_positions():
    from transformers import DistilBertConfig, GPT2Config, RobertaConfig

    distil = DistilBertConfig(**DISTILBERT)
    assert config_int(distil, "layers") == ("num_hidden_layers", 4)  # transformers' attribute_map alias
    assert config_number(distil, "ffn") == 37 and config_number(distil, "hidden") == 32
    plain = type("Plain", (), {"n_layer": 5, "n_head": True})()
    assert config_int(plain, "layers") == ("n_layer", 5) and config_int(plain, "heads") is None  # bools are no counts
    assert config_number(None, "layers") is None
    assert max_positions(GPT2Config(n_positions=64)) == 64
    assert max_positions(RobertaConfig(max_position_embeddings=514)) == 512  # padding_idx + 1 reserved
