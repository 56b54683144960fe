"""The tiny compression models (``tests/compression_toys.py``) build and run."""

from __future__ import annotations

import torch

from compression_toys import cnn_handle, outputs, tiny_bert, tiny_resnet


def test_builders_run():
    for handle in (tiny_bert(), tiny_resnet(), cnn_handle()):
        out = outputs(handle)
        assert out.shape[0] == 2
        assert torch.isfinite(out).all()
