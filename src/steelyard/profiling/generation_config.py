"""What a generation profile runs: prompt length, new tokens, batch sizes, the roofline efficiencies.

Named ``GenerationWorkload`` (not ``GenerationConfig``) so it never shadows transformers' class of
that name. The CLI builds one from ``--prompt-len``, ``--new-tokens`` and ``--batch-size``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steelyard.config_values import normalise_tuples
from steelyard.errors import ConfigError

#: ``--kv-cache`` values: the float cache alone, or one of transformers' quantized caches measured beside it.
#: int4 / int2: optimum-quanto's group-wise codes (quanto stores only these two); int8: HQQ's (the only
#: installed-or-not backend with 8-bit integer codes); fp8: transformers' own float8 cache (per-tensor scale).
KV_CACHES = ("float", "int4", "int2", "int8", "fp8")


@dataclass(frozen=True)
class GenerationWorkload:
    """One request shape (prompt in, ``new_tokens`` out) served at each of ``batch_sizes``."""

    prompt_len: int = field(default=128, metadata={"help": "prompt tokens per request (generative models)"})
    new_tokens: int = field(default=0, metadata={"help": "tokens to generate per request; > 0 profiles "
                                                          "prefill, decode and serving (generate())"})
    batch_sizes: tuple[int, ...] = (1,)
    #: Seconds of audio a speech encoder-decoder (Whisper) reads; None: its own 30 s. Set from ``--audio-seconds``.
    audio_seconds: float | None = None
    #: Context lengths along the generation that are counted; the others are interpolated (attention
    #: work is linear in the context, so 2 points are exact for full attention; more show a sliding window).
    decode_samples: int = 2
    #: Fraction of the peak FLOP/s a prefill reaches (large matmuls): a stated assumption.
    compute_efficiency: float = field(default=0.6, metadata={"help": "fraction of peak FLOP/s the projection "
                                                                      "assumes (prefill, compute-bound decode)"})
    #: Fraction of the memory bandwidth a decode step reaches (streaming the weights): a stated assumption.
    memory_efficiency: float = field(default=0.7, metadata={"help": "fraction of memory bandwidth the "
                                                                     "projection assumes (decode)"})
    #: The KV cache to measure beside the float one (bytes per sequence, TPOT, greedy agreement).
    kv_cache: str = field(default="float", metadata={"help": "float | int4 | int2 (optimum-quanto) | int8 (hqq) | "
                                                             "fp8: also run generate() with transformers' quantized "
                                                             "KV cache and compare it with the float cache"})
    kv_group_size: int = field(default=64, metadata={"help": "values per scale in the quantized KV cache (int2/4/8)"})
    kv_residual_length: int = field(default=128, metadata={"help": "newest tokens the quantized KV cache keeps in "
                                                                   "float before re-quantizing (int2/4/8)"})
    warmup: int = 1
    runs: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.batch_sizes, str):  # "1,8" as on the command line
            try:
                object.__setattr__(self, "batch_sizes", tuple(int(b) for b in self.batch_sizes.split(",")))
            except ValueError:
                raise ConfigError(f"batch sizes must be whole numbers, got '{self.batch_sizes}'") from None
        normalise_tuples(self, "batch_sizes")  # batch_sizes=8 works as (8,)
        if self.prompt_len < 1:
            raise ConfigError(f"--prompt-len must be at least 1, got {self.prompt_len}")
        if self.new_tokens < 0:
            raise ConfigError(f"--new-tokens must be at least 0, got {self.new_tokens}")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be at least 1, got {list(self.batch_sizes)}")
        if self.decode_samples < 2:
            raise ConfigError(f"decode_samples must be at least 2, got {self.decode_samples}")
        for name in ("compute_efficiency", "memory_efficiency"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be in (0, 1], got {value}")
        if self.kv_cache not in KV_CACHES:
            raise ConfigError(f"--kv-cache must be one of {' | '.join(KV_CACHES)}, got {self.kv_cache!r}")
        if self.kv_group_size < 1 or self.kv_residual_length < 1:
            raise ConfigError("--kv-group-size and --kv-residual-length must be at least 1")
        if self.runs < 1 or self.warmup < 0:
            raise ConfigError("runs must be at least 1 and warmup at least 0")

    @property
    def total_tokens(self) -> int:
        """Positions the longest sequence occupies: the prompt plus every new token."""
        return self.prompt_len + self.new_tokens

    @property
    def decode_steps(self) -> int:
        """Decode forwards per request: the prefill already yields the first new token."""
        return max(self.new_tokens - 1, 0)


def parse_batch_sizes(text: str, option: str = "--batch-size") -> tuple[int, ...]:
    """``"1,8,32"`` → ``(1, 8, 32)``; one clear error for anything that is not positive integers."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{option} takes positive integers separated by commas (e.g. 1,8,32), got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise ConfigError(f"{option} takes positive integers separated by commas (e.g. 1,8,32), got {text!r}")
    return tuple(dict.fromkeys(sizes))
