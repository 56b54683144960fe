"""The one rule for which of a stack's layers to keep when it gets shallower.

``spread(total, keep)`` keeps ``floor(i · total / keep)`` for ``i = 0 … keep − 1``: evenly spaced
from the first layer (12 → 6 keeps 0, 2, 4, 6, 8, 10, DistilBERT's initialisation; 6 → 3 keeps
0, 2, 4; 6 → 4 keeps 0, 1, 3, 4). The first layer, which reads the embeddings, always stays; the
last one generally does not, and whatever is trained or kept on top of the last kept layer adapts.
Depth pruning (``prune:layers``) and distillation students (``layers=K``) both use it, so a
pruned model and a student of the same depth start from the same teacher layers.
"""

from __future__ import annotations

from steelyard.errors import ConfigError


def spread(total: int, keep: int) -> list[int]:
    """``keep`` evenly spread indices of ``total`` layers, from the first: ``floor(i · total / keep)``."""
    if not 1 <= keep <= total:
        raise ConfigError(f"cannot keep {keep} of {total} layers: keep between 1 and {total}")
    return [i * total // keep for i in range(keep)]
