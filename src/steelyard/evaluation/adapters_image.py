"""Images for vision models: scale to [0, 1], match channels and size, normalise.

uint8 files are divided by 255 (the built-in digits already are floats in [0, 1]); grey images
are repeated to three channels or colour averaged to one as the model needs; images are resized
to the model's ``image_size`` and normalised with its ``preprocessor_config.json`` mean / std
(0.5 / 0.5 when it has none, the same at training and evaluation time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steelyard.data.dataset import Example
from steelyard.errors import DataError
from steelyard.evaluation.adapters import Batch, Feature, with_labels


@dataclass(frozen=True)
class ImageSpec:
    """What a vision model takes: channels, (height, width) or None to keep the data's size,
    whether it wants flat vectors (MLP factories), and the normalisation mean / std."""

    channels: int
    size: tuple[int, int] | None
    flat: bool = False
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)


def read_normalisation(path: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Mean and std from a model folder's ``preprocessor_config.json``, when it has one."""
    if path is None:
        return None
    file = Path(path) / "preprocessor_config.json"
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("do_normalize") is False:
        return (0.0,), (1.0,)
    mean, std = data.get("image_mean"), data.get("image_std")
    if mean is None or std is None:
        return None
    return _floats(mean), _floats(std)


def _floats(value: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in value) if isinstance(value, (list, tuple)) else (float(value),)


def image_spec_for(handle: Any) -> ImageSpec:
    """The input an image model expects, from its HF config or (factories) its example input."""
    norm = read_normalisation(getattr(handle, "path", None)) or ((0.5,), (0.5,))
    config = getattr(handle, "config", None)
    if config is not None and hasattr(config, "num_channels"):
        size = getattr(config, "image_size", None)
        if isinstance(size, (list, tuple)):
            hw: tuple[int, int] | None = (int(size[0]), int(size[-1]))
        elif isinstance(size, dict):
            hw = (int(size.get("height", 224)), int(size.get("width", 224)))
        else:
            hw = (int(size), int(size)) if size else None
        return ImageSpec(int(config.num_channels), hw, False, *norm)
    tensors = handle.input_tensors() if hasattr(handle, "input_tensors") else []
    if tensors:
        shape = tuple(tensors[0].shape)
        if len(shape) == 4:
            return ImageSpec(int(shape[1]), (int(shape[2]), int(shape[3])), False, *norm)
        if len(shape) == 3:
            return ImageSpec(1, (int(shape[1]), int(shape[2])), False, *norm)
        if len(shape) == 2:
            return ImageSpec(0, None, True, *norm)
    return ImageSpec(3, None, False, *norm)


def image_to_tensor(image: np.ndarray, spec: ImageSpec, size: tuple[int, int] | None, where: str) -> torch.Tensor:
    """One image (H, W) or (H, W, C), uint8 or float in [0, 1] → a normalised float tensor."""
    import torch.nn.functional as F

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise DataError(f"{where}: an image must be (height, width) or (height, width, channels), got {arr.shape}")
    if arr.dtype == np.uint8:
        x = torch.from_numpy(arr.astype(np.float32) / 255.0)
    elif np.issubdtype(arr.dtype, np.integer):
        x = torch.from_numpy(arr.astype(np.float32) / max(1.0, float(arr.max())))
    else:
        x = torch.from_numpy(arr.astype(np.float32))
    x = x.permute(2, 0, 1)  # CHW
    if x.shape[0] == 4:
        x = x[:3]
    want = spec.channels
    if want and x.shape[0] != want:
        if x.shape[0] == 1:
            x = x.expand(want, -1, -1)
        elif want == 1:
            x = x.mean(dim=0, keepdim=True)
        else:
            raise DataError(f"{where}: image has {x.shape[0]} channels, the model takes {want}")
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)
    if mean.shape[0] not in (1, x.shape[0]):
        mean, std = mean.mean().view(1, 1, 1), std.mean().view(1, 1, 1)
    x = (x - mean) / std
    return x.reshape(-1) if spec.flat else x.contiguous()


@dataclass
class ImageAdapter:
    """Images → normalised float tensors at the model's size and channel count."""

    spec: ImageSpec
    kind: str = "classification"
    positional: bool = False
    #: Fixed once from the first image seen when the model does not state a size.
    _size: tuple[int, int] | None = field(default=None, repr=False)

    def encode(self, examples: Sequence[Example]) -> list[Feature]:
        out = []
        for i, ex in enumerate(examples):
            if ex.image is None:
                raise DataError(f"example {i} has no image")
            size = self.spec.size or self._size
            if size is None and not self.spec.flat:
                size = self._size = tuple(np.asarray(ex.image).shape[:2])  # type: ignore[assignment]
            out.append({"pixel_values": image_to_tensor(ex.image, self.spec, size, f"example {i}"), "label": ex.label})
        return out

    def collate(self, features: Sequence[Feature]) -> Batch:
        batch: Batch = {"pixel_values": torch.stack([f["pixel_values"] for f in features])}
        return with_labels(batch, features)


