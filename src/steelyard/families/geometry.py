"""The shape of an architecture read from its config: stacks, attention per layer, FFN / experts, state.

A generic reading covers every config that spells its numbers the usual ways (the aliases in
:data:`~steelyard.families.config_keys.CONFIG_KEYS` and the few below); the differences between
families are data here, not ``if model_type == ...`` at the call sites:

* attention per layer: multi-head, grouped-query (``num_key_value_heads``), multi-query (Falcon's and
  GPT-BigCode's ``multi_query``), DeepSeek's multi-head latent attention (``kv_lora_rank`` plus the
  decoupled rope key ``qk_rope_head_dim``), sliding windows (``sliding_window`` on every layer, or
  ``layer_types`` / Gemma-2's alternation for mixed local / global patterns);
* feed-forward: dense, gated (SwiGLU / GeGLU), or mixture of experts (routed experts, top-k, shared
  experts, which layers are sparse);
* state-space models (Mamba): the fixed recurrent state instead of a KV cache.

:func:`geometry` reads a config; :func:`kv_cache` turns its attention layers into cache bytes, and
:func:`routed_expert_parameters` finds the expert weights of a built model for active-parameter counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from steelyard.families.blocks import max_positions
from steelyard.families.config_keys import config_number

AttentionKind = Literal["mha", "gqa", "mqa", "mla"]
FfnKind = Literal["dense", "gated", "moe"]

#: Model types whose decoder stack is causal and caches K/V when it generates (decoder-only).
CAUSAL_MODEL_TYPES = frozenset({
    "gpt2", "gpt_neox", "gpt_neo", "gptj", "gpt_bigcode", "opt", "bloom", "falcon", "llama", "mistral", "mixtral",
    "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text", "phi", "phi3", "olmo", "olmo2",
    "olmoe", "deepseek_v2", "deepseek_v3", "smollm3", "granite", "granitemoe", "starcoder2", "stablelm", "cohere",
    "mpt", "codegen", "jamba", "dbrx",
})
#: Model types with an encoder and a decoder stack (the decoder caches self-attention K/V).
ENCODER_DECODER_KEYS: tuple[tuple[str, str], ...] = (
    ("encoder_layers", "decoder_layers"),  # BART, Marian, Whisper, Pegasus, M2M-100
    ("num_layers", "num_decoder_layers"),  # T5
)
#: Model types whose FFN multiplies a gate with an up projection (three matrices, not two).
GATED_FFN_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text",
    "phi3", "olmo", "olmo2", "olmoe", "deepseek_v2", "deepseek_v3", "smollm3", "granite", "granitemoe", "cohere",
    "modernbert", "starcoder2",
})
#: Selective state-space models (one SSM state and one conv window per layer, no attention).
STATE_SPACE_TYPES = frozenset({"mamba", "falcon_mamba"})
#: Config keys of the routed-expert count, top-k, shared experts and expert FFN width.
EXPERT_KEYS = ("num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts")
TOP_K_KEYS = ("num_experts_per_tok", "moe_top_k", "top_k", "num_selected_experts")
SHARED_EXPERT_KEYS = ("n_shared_experts", "num_shared_experts")
EXPERT_FFN_KEYS = ("moe_intermediate_size", "expert_intermediate_size")


def _int(config: Any, *keys: str) -> int | None:
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@dataclass(frozen=True)
class LayerAttention:
    """One self-attention layer as a KV cache sees it."""

    kind: AttentionKind
    heads: int
    kv_heads: int
    head_dim: int
    value_dim: int
    #: Sliding window in tokens; None for global attention.
    window: int | None = None
    #: MLA: the compressed KV latent (``kv_lora_rank``) and the decoupled rope key width.
    latent: int | None = None
    rope_dim: int = 0

    @property
    def cached_per_token(self) -> int:
        """Elements one token adds to this layer's cache: K and V per KV head, or MLA's latent + rope key."""
        if self.kind == "mla":
            return (self.latent or 0) + self.rope_dim
        return self.kv_heads * (self.head_dim + self.value_dim)

    def cached_tokens(self, seq_len: int) -> int:
        """Tokens this layer keeps at ``seq_len``: a sliding layer keeps at most its window."""
        return min(seq_len, self.window) if self.window else seq_len


@dataclass(frozen=True)
class FeedForward:
    """The FFN of the blocks: dense, gated, or mixture of experts."""

    kind: FfnKind
    #: Width of the dense FFN (of the dense layers, in an MoE model that has some).
    size: int | None
    experts: int = 0
    top_k: int = 0
    shared_experts: int = 0
    expert_size: int | None = None
    #: Layers whose FFN is sparse (MoE); the rest are dense.
    moe_layers: tuple[int, ...] = ()


@dataclass(frozen=True)
class StateSpace:
    """A selective state-space stack (Mamba): a fixed state per sequence, whatever its length."""

    layers: int
    inner: int
    state_size: int
    conv_kernel: int

    @property
    def elements_per_sequence(self) -> int:
        """SSM state (inner × state) plus the convolution window (inner × kernel), per layer."""
        return self.layers * self.inner * (self.state_size + self.conv_kernel)


@dataclass(frozen=True)
class Geometry:
    """What a config says about an architecture's shape."""

    model_type: str | None
    encoder_layers: int
    decoder_layers: int
    hidden: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None
    vocab: int | None
    max_positions: int | None
    ffn: FeedForward
    #: The causal self-attention layers that cache K/V when generating (a decoder's), one per layer.
    attention: tuple[LayerAttention, ...] = field(default_factory=tuple)
    state_space: StateSpace | None = None

    @property
    def is_moe(self) -> bool:
        return self.ffn.kind == "moe"


@dataclass(frozen=True)
class KVCache:
    """Bytes of the cache a generating model keeps."""

    #: One token in every layer (the growth rate while the sequence fits every window).
    per_token: int
    #: One sequence of ``seq_len`` tokens, sliding layers capped at their window.
    per_sequence: int
    seq_len: int
    #: Layers capped by a window shorter than ``seq_len``.
    capped_layers: int = 0


def _heads(config: Any) -> tuple[int | None, int | None, int | None]:
    """(heads, KV heads, head dim) of the text stack."""
    heads = config_number(config, "heads")
    hidden = config_number(config, "hidden")
    kv = _int(config, "num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
    multi_query = getattr(config, "multi_query", False) is True
    if multi_query and not getattr(config, "new_decoder_architecture", False):
        kv = 1  # Falcon-7B, GPT-BigCode: one K/V head shared by every query head
    if heads and kv is None:
        kv = heads
    head_dim = _int(config, "head_dim", "d_kv", "attention_head_size")
    if head_dim is None and heads and hidden:
        head_dim = hidden // heads
    return heads, kv, head_dim


def _windows(config: Any, layers: int) -> list[int | None]:
    """Per-layer sliding window (None: global), from ``layer_types`` or a uniform ``sliding_window``."""
    window = _int(config, "sliding_window", "local_attention", "attention_window")
    types = getattr(config, "layer_types", None)
    if isinstance(types, (list, tuple)) and len(types) == layers:
        return [window if "sliding" in str(t) or "local" in str(t) else None for t in types]
    if getattr(config, "use_sliding_window", True) is False:
        return [None] * layers
    return [window] * layers


def _attention_layers(config: Any, layers: int) -> tuple[LayerAttention, ...]:
    heads, kv, head_dim = _heads(config)
    decoder_heads = _int(config, "decoder_attention_heads")  # BART, Marian, Whisper: the decoder's own count
    if decoder_heads and heads and decoder_heads != heads:
        hidden = config_number(config, "hidden")
        heads, kv, head_dim = decoder_heads, decoder_heads, (hidden // decoder_heads if hidden else head_dim)
    if not (layers and heads and kv and head_dim):
        return ()
    latent = _int(config, "kv_lora_rank")
    if latent:
        rope = _int(config, "qk_rope_head_dim") or 0
        nope = _int(config, "qk_nope_head_dim") or head_dim
        value = _int(config, "v_head_dim") or nope
        one = LayerAttention("mla", heads, heads, nope + rope, value, latent=latent, rope_dim=rope)
        return (one,) * layers
    kind: AttentionKind = "mha" if kv == heads else ("mqa" if kv == 1 else "gqa")
    return tuple(LayerAttention(kind, heads, kv, head_dim, head_dim, window=w) for w in _windows(config, layers))


def _moe_layers(config: Any, layers: int, experts: int) -> tuple[int, ...]:
    """Which layers are sparse: DeepSeek's first dense layers, Qwen-MoE's sparse step and dense list."""
    first_dense = _int(config, "first_k_dense_replace") or 0
    step = _int(config, "decoder_sparse_step", "moe_layer_freq") or 1
    dense_only = set(getattr(config, "mlp_only_layers", None) or [])
    return tuple(i for i in range(layers)
                 if experts and i >= first_dense and (i + 1) % step == 0 and i not in dense_only)


def _feed_forward(config: Any, layers: int) -> FeedForward:
    size = config_number(config, "ffn")
    model_type = getattr(config, "model_type", None)
    experts = _int(config, *EXPERT_KEYS) or 0
    if experts > 1:
        return FeedForward(
            "moe", size, experts=experts, top_k=_int(config, *TOP_K_KEYS) or 1,
            shared_experts=_int(config, *SHARED_EXPERT_KEYS) or (1 if _int(config, "shared_expert_intermediate_size")
                                                                 else 0),
            expert_size=_int(config, *EXPERT_FFN_KEYS) or size, moe_layers=_moe_layers(config, layers, experts),
        )
    gated = model_type in GATED_FFN_TYPES or str(getattr(config, "feed_forward_proj", "")).startswith("gated")
    return FeedForward("gated" if gated else "dense", size)


def _stacks(config: Any) -> tuple[int, int]:
    """(encoder layers, decoder layers): enc-dec configs by their keys, decoder-only by model type."""
    model_type = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        for enc_key, dec_key in ENCODER_DECODER_KEYS:
            enc, dec = _int(config, enc_key), _int(config, dec_key)
            if enc is not None:
                return enc, dec if dec is not None else enc
    layers = config_number(config, "layers") or 0
    architectures = getattr(config, "architectures", None) or []
    causal = model_type in CAUSAL_MODEL_TYPES or any(
        a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    return (0, layers) if causal else (layers, 0)


def _state_space(config: Any) -> StateSpace | None:
    """Mamba-style stacks: a state size and no attention heads (or a known state-space model type)."""
    state = _int(config, "state_size", "ssm_state_size", "d_state")
    layers = config_number(config, "layers")
    ssm_type = getattr(config, "model_type", None) in STATE_SPACE_TYPES
    if not (state and layers) or not (ssm_type or config_number(config, "heads") is None):
        return None
    hidden = config_number(config, "hidden") or 0
    inner = _int(config, "intermediate_size") or int(getattr(config, "expand", 2)) * hidden
    return StateSpace(layers, inner, state, _int(config, "conv_kernel", "d_conv") or 4)


def geometry(config: Any) -> Geometry:
    """The geometry of ``config`` (a transformers config, or anything with the same attributes).

    Multimodal configs (CLIP) keep their towers in ``text_config`` / ``vision_config``: the text tower
    answers here. Whisper-style speech configs are read like any encoder-decoder.
    """
    text = getattr(config, "text_config", None)
    source = text if text is not None and config_number(config, "layers") is None else config
    encoder, decoder = _stacks(source)
    state = _state_space(source)
    attention = () if state else _attention_layers(source, decoder)
    heads, kv, head_dim = _heads(source)
    return Geometry(
        model_type=getattr(config, "model_type", None),
        encoder_layers=encoder,
        decoder_layers=decoder,
        hidden=config_number(source, "hidden"),
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        vocab=_int(source, "vocab_size"),
        max_positions=max_positions(source),
        ffn=_feed_forward(source, decoder or encoder),
        attention=attention,
        state_space=state,
    )


def kv_cache(config: Any, seq_len: int, bytes_per_element: int) -> KVCache | None:
    """The KV cache a decoder keeps for one sequence of ``seq_len`` tokens; None without one.

    Sums every cached layer: K and V per KV head (MHA, GQA, MQA), MLA's latent + rope key, and a
    sliding layer at most its window. Encoders and state-space models have no KV cache (see
    :func:`recurrent_state_bytes`); an encoder-decoder's cross-attention cache is not included.
    """
    layers = geometry(config).attention
    if not layers:
        return None
    per_token = sum(layer.cached_per_token for layer in layers) * bytes_per_element
    per_sequence = sum(layer.cached_per_token * layer.cached_tokens(seq_len) for layer in layers) * bytes_per_element
    capped = sum(1 for layer in layers if layer.window and layer.window < seq_len)
    return KVCache(per_token, per_sequence, seq_len, capped)


def recurrent_state_bytes(config: Any, bytes_per_element: int) -> int | None:
    """Bytes of a state-space model's fixed state for one sequence (any length); None for others."""
    state = geometry(config).state_space
    return state.elements_per_sequence * bytes_per_element if state else None


def routed_expert_parameters(model: nn.Module) -> list[tuple[str, int, int]]:
    """(module name, parameters, experts) of each routed-experts module: the stacked expert weights.

    transformers keeps a layer's routed experts in one module holding 3-D parameters (experts ×
    out × in) and ``num_experts``; shared experts are ordinary MLPs and are not listed.
    """
    found = []
    for name, module in model.named_modules():
        experts = getattr(module, "num_experts", None)
        own = list(module.parameters(recurse=False))
        if isinstance(experts, int) and experts > 1 and own and all(p.dim() == 3 for p in own):
            found.append((name, sum(p.numel() for p in module.parameters()), experts))
        elif isinstance(module, nn.ModuleList) and name.endswith("experts") and len(module) > 1:
            found.append((name, sum(p.numel() for p in module.parameters()), len(module)))
    return found


def active_parameters(model: nn.Module, config: Any, total: int) -> int | None:
    """Parameters one token uses: everything but the routed experts, plus top-k of each layer's experts.

    The expected load of a token (its top-k experts); embeddings and the head count whole, as usual
    in published active-parameter figures. None for a model without routed experts.
    """
    routed = routed_expert_parameters(model)
    ffn = geometry(config).ffn if config is not None else None
    if not routed or ffn is None or ffn.kind != "moe":
        return None
    inactive = sum(params - params * min(ffn.top_k, experts) // experts for _, params, experts in routed)
    return total - inactive
