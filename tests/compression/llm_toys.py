"""Tiny decoders for the LLM compression tests: a GQA Llama and a GPT-2 (Conv1D layers), random weights."""

from __future__ import annotations

import torch

from steelyard.models import InputSpec, ModelHandle
from steelyard.models.tasks import make_inputs

LLAMA = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False)  # fmt: skip
GPT2 = dict(vocab_size=128, n_embd=64, n_layer=3, n_head=4, n_positions=64)


def tiny_llama(seed: int = 0, batch: int = 2, seq: int = 16, **overrides) -> ModelHandle:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**{**LLAMA, **overrides})
    model = LlamaForCausalLM(config).eval()
    inputs = make_inputs(config, "causal-lm", InputSpec(batch_size=batch, seq_len=seq), "cpu")
    return ModelHandle("tiny-llama", "config", "causal-lm", model, inputs, config)


def tiny_gpt2(seed: int = 0, batch: int = 2, seq: int = 16) -> ModelHandle:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(**GPT2)
    model = GPT2LMHeadModel(config).eval()
    inputs = make_inputs(config, "causal-lm", InputSpec(batch_size=batch, seq_len=seq), "cpu")
    return ModelHandle("tiny-gpt2", "config", "causal-lm", model, inputs, config)


def logits(handle: ModelHandle, inputs=None) -> torch.Tensor:
    with torch.inference_mode():
        return handle.forward(inputs).logits.float()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def gpt2_factory(width: int = 96) -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    """A factory ("module:function") for load_model: a GPT-2 whose width (96) no int4 group of 64 divides."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**{**GPT2, "n_embd": width})).eval()
    return model, (torch.randint(0, GPT2["vocab_size"], (2, 12)),)


def saved_llama(folder, *, layers: int = 4, hidden: int = 32, seed: int = 0):
    """A random tiny Llama saved with the MiniLM tokenizer (a folder ``load_model`` opens as a causal LM)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from text_toys import tokenizer

    tok = tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(**{**LLAMA, "vocab_size": tok.vocab_size, "hidden_size": hidden,
                            "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
                            "max_position_embeddings": 128,
                            "pad_token_id": tok.pad_token_id, "bos_token_id": None, "eos_token_id": None})  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def weather_text(path, lines: int = 120):
    """Plain text with a few repeated patterns: a model learns it in one short epoch."""
    words = ["rain", "sun", "snow", "wind", "fog"]
    path.write_text("\n".join(f"day {i % 7} brings {words[i % 5]} and the cat sleeps" for i in range(lines)) + "\n")
    return path
