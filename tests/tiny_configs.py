"""Tiny Hugging Face configs shared by the tests (closed-form counts are derived in test_profile.py)."""

from __future__ import annotations

GPT2 = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
    "vocab_size": 100,
    "n_positions": 64,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "tie_word_embeddings": True,
}

# --- surgery (tests/test_surgery.py): every family at width 32, 4 heads of 8 -----------------------------
#: Each dict is a transformers config's keyword arguments; the unit sizes in test_surgery.py follow from them.
BERT = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 48, "max_position_embeddings": 64, "num_labels": 3}
ROBERTA = {**BERT, "max_position_embeddings": 66, "pad_token_id": 1}
DISTILBERT = {"vocab_size": 100, "dim": 32, "n_layers": 4, "n_heads": 4, "hidden_dim": 48,
              "max_position_embeddings": 64, "num_labels": 3}
GPT2_SURGERY = {**GPT2, "n_layer": 4}
#: Grouped-query attention: 4 query heads share 2 key / value heads (groups of 2).
LLAMA_GQA = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 48, "max_position_embeddings": 64,
             "tie_word_embeddings": False}
MIXTRAL = {**LLAMA_GQA, "intermediate_size": 24, "num_local_experts": 4, "num_experts_per_tok": 2}
#: Qwen2-MoE with a shared expert, q/k/v biases and its second layer dense (``mlp_only_layers``).
QWEN2_MOE = {**LLAMA_GQA, "intermediate_size": 40, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 24,
             "num_experts": 4, "num_experts_per_tok": 2, "mlp_only_layers": [1], "decoder_sparse_step": 1}
VIT = {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 48,
       "image_size": 32, "patch_size": 8, "num_labels": 3}
BART = {"vocab_size": 100, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 48, "decoder_ffn_dim": 48, "max_position_embeddings": 64,
        "num_labels": 3}
T5 = {"vocab_size": 100, "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_decoder_layers": 2,
      "num_heads": 4, "relative_attention_num_buckets": 32}


# --- saved tiny models: one writer each, shared by the fixtures that need a folder -------------------------


def save_tiny_bert(path, max_positions: int = 64):
    """A 2-layer, width-32 BERT classifier with 3 labels (seed 0), saved to ``path``; returns ``path``."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=100, max_position_embeddings=max_positions,
                                  num_labels=3)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    return path


def save_tiny_resnet(path):
    """A 1-channel ResNet (10 classes, seed 0) small enough to train on 8x8 digits in about a second."""
    import torch
    from transformers import AutoConfig, AutoModelForImageClassification

    config = AutoConfig.for_model("resnet", num_channels=1, embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                                  layer_type="basic", downsample_in_first_stage=False, num_labels=10)
    torch.manual_seed(0)
    AutoModelForImageClassification.from_config(config).save_pretrained(path)
    return path


def save_tiny_llama(path, hidden: int = 32, layers: int = 2, seed: int = 0, **overrides):
    """A random grouped-query Llama causal LM (4 query heads on 2 kv heads, vocab 100), saved to ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{**LLAMA_GQA, "hidden_size": hidden, "intermediate_size": 2 * hidden,
                            "num_hidden_layers": layers, "max_position_embeddings": 128, **overrides})
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path)
    return path
