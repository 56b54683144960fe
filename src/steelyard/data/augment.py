"""Simple, seeded data augmentation for training: small perturbations that keep the label.

When labelled data is scarce, perturbed copies make a classifier less sensitive to details that
do not change the class (a dropped word, two swapped words, a mirrored or shifted image). Every
function is pure: it takes a seed or a numpy Generator and never mutates its input, so a training
run that augments is as reproducible as one that does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from steelyard.data.dataset import Example
from steelyard.errors import ConfigError

Seed = int | np.random.Generator


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_prob(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {p}")


# --- text ---------------------------------------------------------------------------------------


def token_dropout(text: str, p: float, seed: Seed = 0) -> str:
    """Drop each whitespace token with probability ``p``, always keeping at least one token."""
    _check_prob("token dropout", p)
    tokens = text.split()
    if len(tokens) <= 1 or p == 0:
        return text
    rng = _rng(seed)
    keep = rng.random(len(tokens)) >= p
    if not keep.any():
        keep[rng.integers(len(tokens))] = True
    return " ".join(t for t, k in zip(tokens, keep, strict=True) if k)


def token_swap(text: str, p: float, seed: Seed = 0) -> str:
    """Swap neighbouring whitespace tokens: each position starts a swap with probability ``p``.

    A swapped pair is not swapped again, so each token moves at most one place.
    """
    _check_prob("token swap", p)
    tokens = text.split()
    if len(tokens) <= 1 or p == 0:
        return text
    rng = _rng(seed)
    draws = rng.random(len(tokens) - 1)
    i = 0
    while i < len(tokens) - 1:
        if draws[i] < p:
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
            i += 2
        else:
            i += 1
    return " ".join(tokens)


# --- images ---------------------------------------------------------------------------------------


def hflip(image: np.ndarray) -> np.ndarray:
    """Mirror an (H, W) or (H, W, C) image left to right."""
    return np.ascontiguousarray(np.asarray(image)[:, ::-1])


def random_crop(image: np.ndarray, padding: int, seed: Seed = 0) -> np.ndarray:
    """Pad each side with ``padding`` zero pixels, then crop back to the original size at random.

    The result is the image shifted by up to ``padding`` pixels in each direction, the classic
    CIFAR augmentation.
    """
    if padding < 0:
        raise ConfigError(f"crop padding must be >= 0, got {padding}")
    arr = np.asarray(image)
    if padding == 0:
        return arr.copy()
    h, w = arr.shape[:2]
    pad = [(padding, padding), (padding, padding)] + [(0, 0)] * (arr.ndim - 2)
    padded = np.pad(arr, pad, mode="constant")
    rng = _rng(seed)
    top, left = rng.integers(0, 2 * padding + 1, size=2)
    return padded[top : top + h, left : left + w].copy()


def rotate(image: np.ndarray, max_degrees: float, seed: Seed = 0) -> np.ndarray:
    """Rotate by an angle drawn uniformly from [-max_degrees, max_degrees], keeping shape and dtype.

    Bilinear interpolation with zero fill; integer images are rounded and clipped back to their
    dtype's range.
    """
    from scipy import ndimage

    arr = np.asarray(image)
    if max_degrees == 0:
        return arr.copy()
    angle = float(_rng(seed).uniform(-abs(max_degrees), abs(max_degrees)))
    out = ndimage.rotate(arr.astype(np.float32), angle, axes=(1, 0), reshape=False, order=1, mode="constant")
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(arr.dtype)


# --- over example lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TextAugment:
    """Text augmentation settings: token dropout and adjacent-swap probabilities."""

    dropout: float = 0.1
    swap: float = 0.1

    def __post_init__(self) -> None:
        _check_prob("token dropout", self.dropout)
        _check_prob("token swap", self.swap)


@dataclass(frozen=True)
class ImageAugment:
    """Image augmentation settings: flip probability, crop padding (pixels), max rotation (degrees)."""

    flip: float = 0.5
    crop_padding: int = 0
    max_rotation: float = 0.0

    def __post_init__(self) -> None:
        _check_prob("flip probability", self.flip)
        if self.crop_padding < 0:
            raise ConfigError(f"crop padding must be >= 0, got {self.crop_padding}")


def augment_examples(
    examples: list[Example], config: TextAugment | ImageAugment, seed: int = 0, copies: int = 1
) -> list[Example]:
    """``copies`` perturbed copies of each example (labels kept), in order; originals untouched.

    Text examples take ``TextAugment``, image examples ``ImageAugment``. Use a different seed
    per epoch to draw fresh perturbations.
    """
    if copies < 0:
        raise ConfigError(f"augmentation copies must be >= 0, got {copies}")
    rng = _rng(seed)
    out: list[Example] = []
    for ex in examples:
        for _ in range(copies):
            if isinstance(config, TextAugment):
                if ex.text is None:
                    raise ConfigError("text augmentation was given an example without text")
                text = token_dropout(ex.text, config.dropout, rng)
                text = token_swap(text, config.swap, rng)
                out.append(replace(ex, text=text))
            else:
                if ex.image is None:
                    raise ConfigError("image augmentation was given an example without an image")
                img = np.asarray(ex.image)
                if rng.random() < config.flip:
                    img = hflip(img)
                if config.crop_padding:
                    img = random_crop(img, config.crop_padding, rng)
                if config.max_rotation:
                    img = rotate(img, config.max_rotation, rng)
                out.append(replace(ex, image=img))
    return out
