"""Example inputs per modality, read from a model's config, that also run on the meta device.

Which modality a config is (token ids, an encoder-decoder, log-mel features, a raw waveform,
pixels, image + text) is decided here once, from ``model_type`` tables and the config's own
attributes; :func:`example_inputs` builds the batch every measurement uses.

On the meta device transformers' mask helpers read mask values (``padding_mask.all()``) to pick a
kernel, which a meta tensor cannot answer. :func:`meta_attention` registers an SDPA implementation
whose mask function drops an all-ones meta mask before that check (an all-ones mask changes no FLOPs),
so the masks can be passed and every model builds its masks the way it does on real weights.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from steelyard.errors import ConfigError
from steelyard.families.blocks import max_positions

Modality = Literal["text", "seq2seq", "speech-seq2seq", "audio", "vision", "image-text"]

VISION_MODEL_TYPES = frozenset({
    "vit", "resnet", "mobilenet_v2", "mobilenet_v1", "convnext", "convnextv2", "efficientnet", "deit", "swin",
    "swinv2", "regnet", "beit", "dinov2", "levit", "segformer", "mobilevit", "poolformer", "van", "cvt", "dit",
    "vit_mae", "vit_msn", "focalnet", "pvt", "pvt_v2", "timm_wrapper", "hiera",
})
#: Speech models that take log-mel features and decode tokens.
SPEECH_SEQ2SEQ_TYPES = frozenset({"whisper", "speech_to_text"})
#: Speech encoders that take the raw waveform (16 kHz samples).
WAVEFORM_TYPES = frozenset({
    "wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat", "sew",
    "sew-d",
})
#: Dual encoders that take an image and a text together.
IMAGE_TEXT_TYPES = frozenset({"clip", "siglip", "siglip2", "chinese_clip", "altclip", "owlvit", "blip"})

#: Sample rate of raw-waveform models and the frame hop of Whisper-style log-mel features.
SAMPLE_RATE = 16_000
MEL_HOP = 160
#: Whisper pads every clip to 30 s: 3000 mel frames.
WHISPER_FRAMES = 3000
DEFAULT_WAVEFORM_SECONDS = 10.0

META_ATTENTION = "steelyard_meta_sdpa"


def modality(config: Any) -> Modality:
    """What a model with this config reads."""
    model_type = getattr(config, "model_type", None)
    if model_type in SPEECH_SEQ2SEQ_TYPES or hasattr(config, "num_mel_bins"):
        return "speech-seq2seq"
    if model_type in WAVEFORM_TYPES:
        return "audio"
    if model_type in IMAGE_TEXT_TYPES or (hasattr(config, "text_config") and hasattr(config, "vision_config")):
        return "image-text"
    if model_type in VISION_MODEL_TYPES or hasattr(config, "num_channels"):
        return "vision"
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    return "text"


def is_vision(config: Any) -> bool:
    """Pixels alone in (an image model; CLIP-like image + text models are not)."""
    return modality(config) == "vision"


def image_size(config: Any) -> int:
    """The config's image side (a vision tower's when it has one), 224 when it says none."""
    vision = getattr(config, "vision_config", None) or config
    size = getattr(vision, "image_size", None)
    if isinstance(size, (list, tuple)):
        size = size[0]
    return int(size or 224)


def _random(shape: tuple[int, ...], device: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if str(device) == "meta":
        return torch.empty(shape, dtype=dtype, device="meta")
    gen = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)


def _tokens(batch: int, length: int, vocab: int, device: Any) -> torch.Tensor:
    """Token ids drawn from the vocabulary (fixed seed), so embedding lookups touch realistic rows."""
    if str(device) == "meta":
        return torch.zeros((batch, length), dtype=torch.long, device="meta")
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, (batch, length), generator=gen).to(device)


def _text(config: Any, batch: int, seq_len: int, device: Any, *, prefix: str = "") -> dict[str, torch.Tensor]:
    vocab = getattr(config, "vocab_size", None)
    if not isinstance(vocab, int) or vocab < 1:
        raise ConfigError(f"the '{getattr(config, 'model_type', '?')}' config has no vocab_size: cannot build tokens")
    limit = max_positions(config)
    if limit is not None and seq_len > limit:
        raise ConfigError(f"sequence length {seq_len} exceeds the model's maximum of {limit} positions "
                          "(--seq-len / --decoder-len)")
    ids = _tokens(batch, seq_len, vocab, device)
    if prefix:
        return {f"{prefix}input_ids": ids}
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _mel_frames(config: Any, audio_seconds: float | None) -> int:
    if audio_seconds is None:
        return WHISPER_FRAMES
    return max(1, round(audio_seconds * SAMPLE_RATE / MEL_HOP))


def example_inputs(
    config: Any,
    *,
    batch: int,
    seq_len: int,
    device: Any,
    image: int | None = None,
    decoder_len: int | None = None,
    audio_seconds: float | None = None,
    pixels_only: bool = False,
) -> dict[str, torch.Tensor]:
    """The example batch of a model with ``config``, keyed as its ``forward`` takes them.

    ``pixels_only`` forces pixels (an image-classification head on any config); ``decoder_len``
    (default ``seq_len``) sizes the decoder of an encoder-decoder, ``audio_seconds`` a speech input
    (Whisper's own 30 s / 3000 frames, 10 s of waveform, by default).
    """
    kind: Modality = "vision" if pixels_only else modality(config)
    if kind == "vision":
        size = image or image_size(config)
        return {"pixel_values": _random((batch, int(getattr(config, "num_channels", 3)), size, size), device)}
    if kind == "image-text":
        vision = config.vision_config
        size = image or image_size(config)
        pixels = _random((batch, int(getattr(vision, "num_channels", 3)), size, size), device)
        return {**_text(config.text_config, batch, seq_len, device), "pixel_values": pixels}
    if kind == "speech-seq2seq":
        features = _random((batch, int(config.num_mel_bins), _mel_frames(config, audio_seconds)), device)
        return {"input_features": features, **_text(config, batch, decoder_len or seq_len, device, prefix="decoder_")}
    if kind == "audio":
        samples = round((audio_seconds or DEFAULT_WAVEFORM_SECONDS) * SAMPLE_RATE)
        return {"input_values": _random((batch, samples), device)}
    inputs = _text(config, batch, seq_len, device)
    if kind == "seq2seq":
        inputs.update(_text(config, batch, decoder_len or seq_len, device, prefix="decoder_"))
    return inputs


def meta_attention(module: Any) -> None:
    """Let a transformers model built on meta take attention masks: SDPA without mask-value checks.

    Only models that run SDPA switch (eager-only models such as DeBERTa take masks as they are); the
    registered implementation is SDPA itself, so attention is counted the same way.
    """
    config = getattr(module, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(module, "set_attn_implementation"):
        return
    if not module._can_set_attn_implementation():  # Falcon: its own attention code, masks taken as they are
        return
    _register_meta_attention()
    module.set_attn_implementation(META_ATTENTION)


def _register_meta_attention() -> None:
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if META_ATTENTION in AttentionMaskInterface._global_mapping:
        return

    def meta_mask(*args: Any, **kwargs: Any) -> Any:
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.device.type == "meta":
            kwargs["attention_mask"] = None  # all ones: the same mask, without reading values
        return sdpa_mask(*args, **kwargs)

    AttentionInterface.register(META_ATTENTION, sdpa_attention_forward)
    AttentionMaskInterface.register(META_ATTENTION, meta_mask)
