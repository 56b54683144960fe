"""Config of low-rank factorization (frozen dataclass, no torch import)."""

from __future__ import annotations

from dataclasses import dataclass

from steelyard.compression.options import check_fraction, check_positive_int, option
from steelyard.errors import ConfigError


@dataclass(frozen=True)
class LowRankConfig:
    """Replace W (out x in) by two thinner layers of rank r from a truncated SVD.

    The rank is ``ratio * min(out, in)``, or, when ``energy`` is set, the smallest rank whose
    singular values keep that share of sum(s²). A layer is factorized only where
    r * (in + out) < in * out, i.e. where it gets cheaper.
    """

    ratio: float = option(0.5, "kept rank as a fraction of min(in, out)")
    energy: float | None = option(None, "if set: keep this share of the squared singular values instead")
    round_to: int = option(8, "round the rank up to a multiple of this (1: off)")
    include_head: bool = option(False, "also factorize the output head")
    convs: bool = option(True, "also factorize Conv2d layers (reshaped to out x in*kh*kw)")

    def __post_init__(self) -> None:
        check_fraction("low-rank:svd", "ratio", self.ratio)
        energy = self.energy
        if energy is not None and (
            isinstance(energy, bool) or not isinstance(energy, (int, float)) or not 0 < energy < 1
        ):
            raise ConfigError(f"low-rank:svd: energy must be in (0, 1), got {self.energy}")
        check_positive_int("low-rank:svd", "round_to", self.round_to)
