"""Published architectures, as their ``config.json`` on the Hugging Face hub spells them.

Each entry keeps the keys of the published config that change the shape of the model (hidden size,
layers, heads, vocabulary, experts, windows, dtype); keys that only change values (rope theta, init
ranges, token ids) are left at transformers' defaults where they do not change a count.

Reference numbers, written down by hand, not computed by steelyard:

* ``kv``: elements one token adds to the KV cache, as a closed form over the published config
  (2 · layers · KV heads · head dim for MHA / GQA / MQA; layers · (kv_lora_rank + rope dim) for MLA);
  None for encoders, and the fixed state for Mamba (``state``: layers · inner · (state + conv kernel));
* ``inactive``: parameters of an MoE model a token does not use: MoE layers · (experts − top-k) · one
  expert's parameters (active = total − inactive); ``active_published`` the figure the card states;
* ``published``: the parameter count the model card or paper states, where it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ZooEntry:
    name: str
    hub_id: str
    task: str
    config: dict[str, Any]
    kv: int | None = None
    state: int | None = None
    inactive: int | None = None
    active_published: float | None = None
    published: int | None = None
    #: 7B and up (and Mamba-2.8B, 64 long scans): built and counted like the others, but a quick run can skip them.
    big: bool = False
    inputs: dict[str, Any] = field(default_factory=dict)


def _expert(hidden: int, inner: int) -> int:
    """One gated expert: gate, up and down projections without bias."""
    return 3 * hidden * inner


ZOO: list[ZooEntry] = [
    # ---- dense decoders ----
    ZooEntry("llama-3.1-8b", "meta-llama/Llama-3.1-8B", "causal-lm", dict(
        model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
        max_position_embeddings=131072, rope_theta=500000.0, tie_word_embeddings=False, torch_dtype="bfloat16",
        rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"}),
        kv=2 * 32 * 8 * 128, published=8_030_261_248, big=True),
    ZooEntry("llama-3.1-405b", "meta-llama/Llama-3.1-405B", "causal-lm", dict(
        model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=16384, intermediate_size=53248,
        num_hidden_layers=126, num_attention_heads=128, num_key_value_heads=8, vocab_size=128256,
        max_position_embeddings=131072, rope_theta=500000.0, tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=2 * 126 * 8 * 128, big=True),
    ZooEntry("llama-3.2-1b", "meta-llama/Llama-3.2-1B", "causal-lm", dict(
        model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=2048, intermediate_size=8192,
        num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
        max_position_embeddings=131072, rope_theta=500000.0, tie_word_embeddings=True, torch_dtype="bfloat16"),
        kv=2 * 16 * 8 * 64, published=1_235_814_400),
    ZooEntry("qwen2.5-7b", "Qwen/Qwen2.5-7B", "causal-lm", dict(
        model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=3584, intermediate_size=18944,
        num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
        max_position_embeddings=131072, sliding_window=131072, use_sliding_window=False, max_window_layers=28,
        rope_theta=1000000.0, tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=2 * 28 * 4 * 128, published=7_615_616_512, big=True),
    ZooEntry("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "causal-lm", dict(
        model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=896, intermediate_size=4864,
        num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
        max_position_embeddings=32768, sliding_window=32768, use_sliding_window=False, max_window_layers=24,
        tie_word_embeddings=True, torch_dtype="bfloat16"),
        kv=2 * 24 * 2 * 64, published=494_032_768),
    ZooEntry("gemma-2-9b", "google/gemma-2-9b", "causal-lm", dict(
        model_type="gemma2", architectures=["Gemma2ForCausalLM"], hidden_size=3584, intermediate_size=14336,
        num_hidden_layers=42, num_attention_heads=16, num_key_value_heads=8, head_dim=256, vocab_size=256000,
        max_position_embeddings=8192, sliding_window=4096, query_pre_attn_scalar=256, attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0, torch_dtype="float32"),
        kv=2 * 42 * 8 * 256, published=9_241_705_984, big=True),
    ZooEntry("gemma-2-2b", "google/gemma-2-2b", "causal-lm", dict(
        model_type="gemma2", architectures=["Gemma2ForCausalLM"], hidden_size=2304, intermediate_size=9216,
        num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4, head_dim=256, vocab_size=256000,
        max_position_embeddings=8192, sliding_window=4096, query_pre_attn_scalar=256, attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0, torch_dtype="float32"),
        kv=2 * 26 * 4 * 256, published=2_614_341_888),
    ZooEntry("phi-3-mini-4k", "microsoft/Phi-3-mini-4k-instruct", "causal-lm", dict(
        model_type="phi3", architectures=["Phi3ForCausalLM"], hidden_size=3072, intermediate_size=8192,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, vocab_size=32064,
        max_position_embeddings=4096, original_max_position_embeddings=4096, sliding_window=2047,
        tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=2 * 32 * 32 * 96, published=3_821_079_552),
    ZooEntry("mistral-7b-v0.1", "mistralai/Mistral-7B-v0.1", "causal-lm", dict(
        model_type="mistral", architectures=["MistralForCausalLM"], hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
        max_position_embeddings=32768, sliding_window=4096, rope_theta=10000.0, tie_word_embeddings=False,
        torch_dtype="bfloat16"),
        kv=2 * 32 * 8 * 128, published=7_241_732_096, big=True),
    ZooEntry("falcon-7b", "tiiuae/falcon-7b", "causal-lm", dict(
        model_type="falcon", architectures=["FalconForCausalLM"], hidden_size=4544, num_hidden_layers=32,
        num_attention_heads=71, multi_query=True, new_decoder_architecture=False, parallel_attn=True, bias=False,
        alibi=False, vocab_size=65024, torch_dtype="bfloat16"),
        kv=2 * 32 * 1 * 64, published=6_921_720_704, big=True),
    ZooEntry("opt-1.3b", "facebook/opt-1.3b", "causal-lm", dict(
        model_type="opt", architectures=["OPTForCausalLM"], hidden_size=2048, ffn_dim=8192, num_hidden_layers=24,
        num_attention_heads=32, vocab_size=50272, max_position_embeddings=2048, word_embed_proj_dim=2048,
        do_layer_norm_before=True, torch_dtype="float16"),
        kv=2 * 24 * 32 * 64, published=1_315_758_080),
    ZooEntry("bloom-560m", "bigscience/bloom-560m", "causal-lm", dict(
        model_type="bloom", architectures=["BloomForCausalLM"], hidden_size=1024, n_layer=24, n_head=16,
        vocab_size=250880),
        kv=2 * 24 * 16 * 64, published=559_214_592),
    ZooEntry("pythia-1.4b", "EleutherAI/pythia-1.4b", "causal-lm", dict(
        model_type="gpt_neox", architectures=["GPTNeoXForCausalLM"], hidden_size=2048, intermediate_size=8192,
        num_hidden_layers=24, num_attention_heads=16, vocab_size=50304, rotary_pct=0.25, max_position_embeddings=2048,
        use_parallel_residual=True, tie_word_embeddings=False, torch_dtype="float16"),
        kv=2 * 24 * 16 * 128, published=1_414_647_808),
    ZooEntry("gpt2", "openai-community/gpt2", "causal-lm", dict(
        model_type="gpt2", architectures=["GPT2LMHeadModel"], n_embd=768, n_layer=12, n_head=12, vocab_size=50257,
        n_positions=1024),
        kv=2 * 12 * 12 * 64, published=124_439_808),
    # ---- mixtures of experts ----
    ZooEntry("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", "causal-lm", dict(
        model_type="mixtral", architectures=["MixtralForCausalLM"], hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000, num_local_experts=8,
        num_experts_per_tok=2, max_position_embeddings=32768, rope_theta=1e6, sliding_window=None,
        tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=2 * 32 * 8 * 128, published=46_702_792_704,
        inactive=32 * (8 - 2) * _expert(4096, 14336), active_published=12.9e9, big=True),
    ZooEntry("qwen1.5-moe-a2.7b", "Qwen/Qwen1.5-MoE-A2.7B", "causal-lm", dict(
        model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], hidden_size=2048, intermediate_size=5632,
        moe_intermediate_size=1408, shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
        num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16, vocab_size=151936,
        max_position_embeddings=8192, decoder_sparse_step=1, tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=2 * 24 * 16 * 128, published=14_315_784_192,
        inactive=24 * (60 - 4) * _expert(2048, 1408), big=True),
    ZooEntry("deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite", "causal-lm", dict(
        model_type="deepseek_v2", architectures=["DeepseekV2ForCausalLM"], hidden_size=2048, intermediate_size=10944,
        moe_intermediate_size=1408, num_hidden_layers=27, num_attention_heads=16, num_key_value_heads=16,
        n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6, first_k_dense_replace=1, moe_layer_freq=1,
        kv_lora_rank=512, q_lora_rank=None, qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128,
        vocab_size=102400, max_position_embeddings=163840, tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=27 * (512 + 64),
        inactive=26 * (64 - 6) * _expert(2048, 1408), big=True),  # the card's 2.4 B active leaves out the embeddings
    ZooEntry("olmoe-1b-7b", "allenai/OLMoE-1B-7B-0924", "causal-lm", dict(
        model_type="olmoe", architectures=["OlmoeForCausalLM"], hidden_size=2048, intermediate_size=1024,
        num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=16, num_experts=64, num_experts_per_tok=8,
        vocab_size=50304, max_position_embeddings=4096, tie_word_embeddings=False, torch_dtype="bfloat16"),
        kv=2 * 16 * 16 * 128, published=6_919_161_856,
        inactive=16 * (64 - 8) * _expert(2048, 1024), active_published=1.3e9, big=True),
    # ---- encoder-decoders ----
    ZooEntry("t5-small", "google-t5/t5-small", "feature-extraction", dict(
        model_type="t5", architectures=["T5ForConditionalGeneration"], d_model=512, d_kv=64, d_ff=2048, num_layers=6,
        num_heads=8, vocab_size=32128, feed_forward_proj="relu"),
        kv=2 * 6 * 8 * 64),
    ZooEntry("flan-t5-base", "google/flan-t5-base", "feature-extraction", dict(
        model_type="t5", architectures=["T5ForConditionalGeneration"], d_model=768, d_kv=64, d_ff=2048,
        num_layers=12, num_decoder_layers=12, num_heads=12, vocab_size=32128, feed_forward_proj="gated-gelu",
        tie_word_embeddings=False, torch_dtype="float32"),
        kv=2 * 12 * 12 * 64),
    ZooEntry("bart-base", "facebook/bart-base", "feature-extraction", dict(
        model_type="bart", architectures=["BartModel"], d_model=768, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
        vocab_size=50265, max_position_embeddings=1024),
        kv=2 * 6 * 12 * 64, published=139_420_416),
    ZooEntry("opus-mt-en-de", "Helsinki-NLP/opus-mt-en-de", "feature-extraction", dict(
        model_type="marian", architectures=["MarianMTModel"], d_model=512, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        vocab_size=58101, decoder_vocab_size=58101, max_position_embeddings=512, pad_token_id=58100,
        decoder_start_token_id=58100, scale_embedding=True, static_position_embeddings=True),
        kv=2 * 6 * 8 * 64),
    # ---- speech ----
    ZooEntry("whisper-tiny", "openai/whisper-tiny", "feature-extraction", dict(
        model_type="whisper", architectures=["WhisperForConditionalGeneration"], d_model=384, encoder_layers=4,
        decoder_layers=4, encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536,
        decoder_ffn_dim=1536, num_mel_bins=80, vocab_size=51865, max_source_positions=1500,
        max_target_positions=448),
        kv=2 * 4 * 6 * 64),
    ZooEntry("wav2vec2-base", "facebook/wav2vec2-base", "feature-extraction", dict(
        model_type="wav2vec2", architectures=["Wav2Vec2ForPreTraining"], hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, feat_extract_norm="group", do_stable_layer_norm=False),
        inputs={"audio_seconds": 1.0}),
    # ---- vision and multimodal ----
    ZooEntry("vit-base-patch16-224", "google/vit-base-patch16-224", "image-classification", dict(
        model_type="vit", architectures=["ViTForImageClassification"], hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, image_size=224, patch_size=16, num_labels=1000),
        published=86_567_656),
    ZooEntry("deit-small-distilled", "facebook/deit-small-distilled-patch16-224", "feature-extraction", dict(
        model_type="deit", architectures=["DeiTForImageClassificationWithTeacher"], hidden_size=384,
        num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, image_size=224, patch_size=16)),
    ZooEntry("swin-tiny", "microsoft/swin-tiny-patch4-window7-224", "image-classification", dict(
        model_type="swin", architectures=["SwinForImageClassification"], embed_dim=96, depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24], window_size=7, image_size=224, patch_size=4, num_labels=1000)),
    ZooEntry("segformer-b0", "nvidia/mit-b0", "feature-extraction", dict(
        model_type="segformer", architectures=["SegformerForImageClassification"], hidden_sizes=[32, 64, 160, 256],
        depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], decoder_hidden_size=256)),
    ZooEntry("convnext-tiny", "facebook/convnext-tiny-224", "image-classification", dict(
        model_type="convnext", architectures=["ConvNextForImageClassification"], hidden_sizes=[96, 192, 384, 768],
        depths=[3, 3, 9, 3], num_labels=1000)),
    ZooEntry("clip-vit-base-patch32", "openai/clip-vit-base-patch32", "feature-extraction", dict(
        model_type="clip", architectures=["CLIPModel"], projection_dim=512,
        text_config={"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8,
                     "num_hidden_layers": 12, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                       "num_hidden_layers": 12, "image_size": 224, "patch_size": 32}),
        published=151_277_313),
    # ---- encoders ----
    ZooEntry("bert-base-uncased", "google-bert/bert-base-uncased", "feature-extraction", dict(
        model_type="bert", architectures=["BertForMaskedLM"], hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, vocab_size=30522, max_position_embeddings=512),
        published=109_482_240),
    ZooEntry("distilbert-base-uncased", "distilbert/distilbert-base-uncased", "feature-extraction", dict(
        model_type="distilbert", architectures=["DistilBertForMaskedLM"], dim=768, n_layers=6, n_heads=12,
        hidden_dim=3072, vocab_size=30522), published=66_362_880),
    ZooEntry("roberta-base", "FacebookAI/roberta-base", "feature-extraction", dict(
        model_type="roberta", architectures=["RobertaForMaskedLM"], hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, vocab_size=50265, max_position_embeddings=514,
        type_vocab_size=1, pad_token_id=1), published=124_645_632),
    ZooEntry("deberta-v3-base", "microsoft/deberta-v3-base", "feature-extraction", dict(
        model_type="deberta-v2", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, vocab_size=128100, max_position_embeddings=512, relative_attention=True,
        position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, max_relative_positions=-1, type_vocab_size=0)),
    ZooEntry("modernbert-base", "answerdotai/ModernBERT-base", "feature-extraction", dict(
        model_type="modernbert", architectures=["ModernBertForMaskedLM"], hidden_size=768, num_hidden_layers=22,
        num_attention_heads=12, intermediate_size=1152, vocab_size=50368, max_position_embeddings=8192,
        global_attn_every_n_layers=3, local_attention=128)),
    # ---- state space ----
    ZooEntry("mamba-130m", "state-spaces/mamba-130m-hf", "causal-lm", dict(
        model_type="mamba", architectures=["MambaForCausalLM"], hidden_size=768, num_hidden_layers=24, state_size=16,
        expand=2, intermediate_size=1536, conv_kernel=4, vocab_size=50280),
        state=24 * 1536 * (16 + 4)),
    # The largest published Mamba (v1): its per-token selective scan is what the 15 s budget is about.
    ZooEntry("mamba-2.8b", "state-spaces/mamba-2.8b-hf", "causal-lm", dict(
        model_type="mamba", architectures=["MambaForCausalLM"], hidden_size=2560, num_hidden_layers=64, state_size=16,
        expand=2, intermediate_size=5120, conv_kernel=4, vocab_size=50280, torch_dtype="float32"),
        state=64 * 5120 * (16 + 4), big=True),
]

BY_NAME: dict[str, ZooEntry] = {e.name: e for e in ZOO}
