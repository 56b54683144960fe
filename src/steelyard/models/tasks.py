"""Tasks steelyard knows, the transformers auto-class for each, and example inputs.

A task decides which head sits on the model and what an input looks like; everything
downstream (counting, timing, evaluation) only calls ``handle.forward()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steelyard.errors import ConfigError
from steelyard.families.inputs import example_inputs, modality

TASKS: dict[str, str] = {
    "text-classification": "AutoModelForSequenceClassification",
    "image-classification": "AutoModelForImageClassification",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "speech-seq2seq": "AutoModelForSpeechSeq2Seq",
    "feature-extraction": "AutoModel",
}

@dataclass(frozen=True)
class InputSpec:
    """The shape of the example batch that every measurement uses."""

    batch_size: int = 1
    seq_len: int = 128
    image_size: int | None = None  # None: the config's own image size (224 when it has none)
    #: Decoder tokens of an encoder-decoder (T5, BART, Marian, Whisper); None: ``seq_len``.
    decoder_len: int | None = None
    #: Seconds of audio for speech models; None: Whisper's 30 s (3000 mel frames), 10 s of waveform.
    audio_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.seq_len < 1:
            raise ConfigError(f"sequence length must be at least 1, got {self.seq_len}")
        if self.image_size is not None and self.image_size < 1:
            raise ConfigError(f"image size must be at least 1, got {self.image_size}")
        if self.decoder_len is not None and self.decoder_len < 1:
            raise ConfigError(f"decoder length must be at least 1, got {self.decoder_len}")
        if self.audio_seconds is not None and self.audio_seconds <= 0:
            raise ConfigError(f"audio length must be positive, got {self.audio_seconds} s")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; choose one of: {', '.join(TASKS)}")
    return task


def auto_class(task: str) -> Any:
    import transformers

    return getattr(transformers, TASKS[check_task(task)])


def infer_task(config: Any) -> str:
    """The task a config was published for: its architecture name, else its model type."""
    for arch in getattr(config, "architectures", None) or []:
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return "causal-lm"
        if arch.endswith("ForSequenceClassification"):
            return "text-classification"
        if arch.endswith("ForImageClassification"):
            return "image-classification"
    if modality(config) == "vision":
        return "image-classification"
    return "feature-extraction"


def generative_task(config: Any) -> str:
    """The head that generates tokens for this config: a speech or text encoder-decoder LM, else a causal LM."""
    kind = modality(config)
    if kind == "speech-seq2seq":
        return "speech-seq2seq"
    if kind == "seq2seq":
        return "seq2seq-lm"
    return "causal-lm"


def make_inputs(config: Any, task: str, spec: InputSpec, device: Any) -> dict[str, Any]:
    """Example inputs for a Hugging Face model, per modality (:func:`steelyard.families.inputs.example_inputs`).

    An image-classification head always takes pixels; every other task takes what the config's
    modality reads (tokens, encoder + decoder tokens, log-mel features, a waveform, pixels, image + text).
    """
    return example_inputs(
        config, batch=spec.batch_size, seq_len=spec.seq_len, device=device, image=spec.image_size,
        decoder_len=spec.decoder_len, audio_seconds=spec.audio_seconds, pixels_only=task == "image-classification",
    )
