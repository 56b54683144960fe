"""Run a model over encoded features and collect what metrics need.

Classification collects softmax probabilities (ROC-AUC needs scores, accuracy the argmax);
causal LM collects each block's summed next-token NLL and token count, so perplexity weighs
every token equally and can still be bootstrapped over blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steelyard.evaluation.adapters import Adapter, Feature, call_model, iter_batches, lm_token_nll, logits_of
from steelyard.evaluation.progress import progress_bar


@dataclass
class Outputs:
    """Per-example model outputs: ``proba`` (n, classes) and ``labels`` for classification;
    ``nll`` and ``n_tokens`` per block for causal LM."""

    proba: np.ndarray | None = None
    labels: np.ndarray | None = None
    nll: np.ndarray | None = None
    n_tokens: np.ndarray | None = None

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
) -> Outputs:
    """Model outputs over ``features`` in order, in eval mode without gradients."""
    was_training = module.training
    module.eval()
    probas: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    nlls: list[torch.Tensor] = []
    counts: list[torch.Tensor] = []
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
                else:
                    probas.append(torch.softmax(logits.float(), dim=-1).cpu())
                    if "labels" in batch:
                        labels.append(batch["labels"].cpu())
                bar.advance()
    finally:
        module.train(was_training)
    if adapter.kind == "lm":
        return Outputs(
            nll=torch.cat(nlls).double().numpy() if nlls else np.zeros(0),
            n_tokens=torch.cat(counts).numpy() if counts else np.zeros(0, dtype=np.int64),
        )
    return Outputs(
        proba=torch.cat(probas).numpy() if probas else np.zeros((0, 0)),
        labels=torch.cat(labels).numpy() if labels else None,
    )
