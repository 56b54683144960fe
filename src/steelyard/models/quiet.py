"""transformers' own progress bars ("Loading weights", downloads) stay off while steelyard loads a model.

A Python caller of :func:`steelyard.load_model` (or of any verb that loads) gets its result, not a
tqdm bar on stderr for each of steelyard's loads; steelyard reports its own progress through
:func:`steelyard.set_progress_display`. ``LoadConfig(library_progress=True)`` keeps transformers'
bars, and a user who set ``HF_HUB_DISABLE_PROGRESS_BARS=0`` keeps the hub's. The previous state is
restored afterwards, so a user's own ``from_pretrained`` calls behave as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["library_bars"]


@contextmanager
def library_bars(show: bool = False) -> Iterator[None]:
    """Within the block, transformers' and huggingface_hub's tqdm bars are off unless ``show``."""
    if show:
        yield
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # a factory model without transformers installed: nothing to quiet
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
