"""Run a model over encoded features and collect what metrics need.

Classification collects softmax probabilities (ROC-AUC needs scores, accuracy the argmax);
causal LM collects each block's summed next-token NLL and token count and sums them per document,
so perplexity weighs every token equally and is bootstrapped (and paired-tested) over documents.
Blocks of one document share its topic and style, so resampling them as if independent would
give an interval that is too narrow. With fewer than :data:`MIN_DOCUMENTS` documents (one long
text file) there is nothing to resample over, and the units stay the blocks (``Outputs.unit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steelyard.evaluation.adapters import Adapter, Feature, call_model, iter_batches, lm_token_nll, logits_of
from steelyard.evaluation.progress import progress_bar

#: Fewest documents a perplexity interval resamples; below it, blocks are the units.
MIN_DOCUMENTS = 10


@dataclass
class Outputs:
    """Per-example model outputs: ``proba`` (n, classes) and ``labels`` for classification;
    ``nll`` and ``n_tokens`` per unit for causal LM (``unit``: "documents" or "blocks"; ``blocks``
    the count of blocks scored)."""

    proba: np.ndarray | None = None
    labels: np.ndarray | None = None
    nll: np.ndarray | None = None
    n_tokens: np.ndarray | None = None
    unit: str | None = None
    blocks: int | None = None

    def __len__(self) -> int:
        arr = self.proba if self.proba is not None else self.nll
        return 0 if arr is None else len(arr)


def predict(
    module: torch.nn.Module,
    adapter: Adapter,
    features: Sequence[Feature],
    batch_size: int,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "evaluating",
    by_document: bool = True,
) -> Outputs:
    """Model outputs over ``features`` in order, in eval mode without gradients; a causal LM's per document
    (``by_document=False``: per block, one row per feature, as a sharded run gathers them)."""
    was_training = module.training
    module.eval()
    probas: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    nlls: list[torch.Tensor] = []
    counts: list[torch.Tensor] = []
    documents: list[int] = []
    batches = iter_batches(features, batch_size)
    try:
        with torch.inference_mode(), progress_bar(description, len(batches), progress) as bar:
            for chunk in batches:
                batch = {k: v.to(device) for k, v in adapter.collate(chunk).items()}
                logits = logits_of(call_model(module, batch, adapter.positional))
                if adapter.kind == "lm":
                    nll, n = lm_token_nll(logits, batch["labels"])
                    nlls.append(nll.cpu())
                    counts.append(n.cpu())
                    base = len(documents)  # a block that names no document is its own unit
                    documents.extend([int(f.get("document", -1 - base - i)) for i, f in enumerate(chunk)])
                else:
                    probas.append(torch.softmax(logits.float(), dim=-1).cpu())
                    if "labels" in batch:
                        labels.append(batch["labels"].cpu())
                bar.advance()
    finally:
        module.train(was_training)
    if adapter.kind == "lm" and not by_document:
        return Outputs(nll=torch.cat(nlls).double().numpy() if nlls else np.zeros(0),
                       n_tokens=torch.cat(counts).numpy() if counts else np.zeros(0, dtype=np.int64),
                       unit="blocks", blocks=len(documents))
    if adapter.kind == "lm":
        return per_document(torch.cat(nlls).double().numpy() if nlls else np.zeros(0),
                            torch.cat(counts).numpy() if counts else np.zeros(0, dtype=np.int64),
                            np.asarray(documents, dtype=np.int64))
    return Outputs(
        proba=torch.cat(probas).numpy() if probas else np.zeros((0, 0)),
        labels=torch.cat(labels).numpy() if labels else None,
    )


def per_document(nll: np.ndarray, n_tokens: np.ndarray, documents: np.ndarray) -> Outputs:
    """Block NLL sums and token counts summed per document (in order of first appearance), or left per
    block when there are fewer than :data:`MIN_DOCUMENTS` documents."""
    ids, first, inverse = np.unique(documents, return_index=True, return_inverse=True)
    if len(ids) < MIN_DOCUMENTS:
        return Outputs(nll=nll, n_tokens=n_tokens, unit="blocks", blocks=len(nll))
    order = np.argsort(first)  # documents in the order their first block came
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    doc_nll = np.zeros(len(ids))
    doc_tokens = np.zeros(len(ids), dtype=np.int64)
    np.add.at(doc_nll, rank[inverse], nll)
    np.add.at(doc_tokens, rank[inverse], n_tokens)
    return Outputs(nll=doc_nll, n_tokens=doc_tokens, unit="documents", blocks=len(nll))
