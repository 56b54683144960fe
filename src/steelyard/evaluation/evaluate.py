"""``evaluate``: what a model is worth on a task, with confidence intervals.

One call encodes a split, runs the model, and scores it with scikit-learn metrics and
percentile-bootstrap intervals (:func:`steelyard.metrics.compute_metrics`), so "A beats B" can
be told from noise. Bad combinations (labels that do not fit the head, an image model on text,
no tokenizer, an empty split) fail before any model work with a one-line error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from steelyard.data.dataset import TaskDataset
from steelyard.data.quality import leakage
from steelyard.errors import DataError
from steelyard.evaluation.adapters import CausalLMAdapter, TextAdapter
from steelyard.evaluation.labels import LabelMap
from steelyard.evaluation.predict import Outputs, predict
from steelyard.evaluation.predictor import predictor_for
from steelyard.evaluation.progress import progress_enabled
from steelyard.evaluation.result import EvaluationResult, LMSummary, PredictionSummary
from steelyard.metrics import MetricValue, compute_metrics, resolve_metric
from steelyard.models.handle import ModelHandle

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1", "roc_auc"),
    "lm": ("perplexity",),
}


def default_metrics(task: str) -> tuple[str, ...]:
    return DEFAULT_METRICS["lm" if task == "causal-lm" else "classification"]


def resolve_metrics(names: Sequence[str] | None, task: str) -> list[str]:
    """Canonical metric names for ``task`` (ConfigError naming the valid ones otherwise)."""
    chosen = list(names) if names else list(default_metrics(task))
    out: list[str] = []
    for name in chosen:
        canonical = resolve_metric(name, task)
        if canonical not in out:
            out.append(canonical)
    return out


def score(
    outputs: Outputs,
    metric_names: Sequence[str],
    task: str,
    labels: LabelMap | None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, MetricValue], PredictionSummary | None]:
    """Metrics with bootstrap CIs and (classification) a summary of the predictions."""
    if outputs.nll is not None:
        metrics = compute_metrics(
            metric_names, None, None, task=task, nll=outputs.nll, n_tokens=outputs.n_tokens,
            n_resamples=n_resamples, seed=seed, unit=outputs.unit,
        )
        return metrics, None
    if outputs.labels is None or outputs.proba is None:
        raise DataError("classification metrics need labelled examples")
    y = outputs.labels.astype(np.int64)
    if labels is not None:
        y = np.asarray(labels.to_model, dtype=np.int64)[y]
    metrics = compute_metrics(metric_names, y, outputs.proba, task=task, n_resamples=n_resamples, seed=seed)
    names = labels.names if labels is not None else [str(i) for i in range(outputs.proba.shape[1])]
    return metrics, summarise(y, outputs.proba, names)


def summarise(y: np.ndarray, proba: np.ndarray, names: list[str]) -> PredictionSummary:
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    true_counts = confusion.sum(axis=1)
    recall = {
        names[i]: (float(confusion[i, i] / true_counts[i]) if true_counts[i] else None) for i in range(k)
    }
    return PredictionSummary(
        label_names=list(names),
        true_counts={names[i]: int(true_counts[i]) for i in range(k)},
        predicted_counts={names[i]: int(confusion[:, i].sum()) for i in range(k)},
        recall=recall,
        confusion=confusion.tolist(),
        mean_confidence=float(proba.max(axis=1).mean()) if len(proba) else float("nan"),
    )


def evaluate(
    handle: ModelHandle,
    dataset: TaskDataset,
    split: str = "test",
    metrics: Sequence[str] | None = None,
    batch_size: int = 32,
    *,
    max_length: int = 128,
    max_examples: int | None = None,
    tokenizer: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool | None = None,
) -> EvaluationResult:
    """Score ``handle`` on one split of ``dataset``.

    ``metrics`` default to accuracy, macro-F1 and ROC-AUC for classification, perplexity for
    causal LM. ``max_examples`` evaluates a stratified, seeded subset (quick looks). Text is
    truncated to ``max_length`` tokens (the block size for perplexity). ``tokenizer`` overrides
    where the tokenizer is loaded from (needed for models built from a config or a factory).
    """
    names = resolve_metrics(metrics, dataset.task)
    examples = dataset.split(split)
    notes: list[str] = []
    if max_examples is not None:
        if max_examples < 1:
            raise DataError(f"max examples must be at least 1, got {max_examples}")
        if max_examples < len(examples):
            examples = dataset.with_splits(test=examples).subset({"test": max_examples}, seed=seed).test
            notes.append(f"evaluated a stratified subset of {len(examples)} examples (seed {seed})")
    if not examples:
        raise DataError(f"split {split!r} of {dataset.name!r} is empty: nothing to evaluate")
    predictor = predictor_for(handle, dataset, max_length=max_length, tokenizer=tokenizer)
    notes.extend(predictor.notes)
    start = time.perf_counter()
    features = predictor.adapter.encode(examples)
    if not features:
        raise DataError(f"split {split!r} of {dataset.name!r} has no text to evaluate")
    outputs = predict(
        predictor.module, predictor.adapter, features, batch_size, device=handle.device,
        progress=progress_enabled(progress), description=f"evaluating on {split}",
    )
    seconds = time.perf_counter() - start
    values, summary = score(outputs, names, dataset.task, predictor.labels, n_resamples=n_resamples, seed=seed)
    lm = None
    adapter = predictor.adapter
    if isinstance(adapter, CausalLMAdapter) and outputs.n_tokens is not None:
        lm = LMSummary(int(outputs.n_tokens.sum()), int(outputs.blocks or len(outputs)), adapter.block_size,
                       outputs.unit or "blocks", len(outputs))
    length = adapter.max_length if isinstance(adapter, TextAdapter) else (
        adapter.block_size if isinstance(adapter, CausalLMAdapter) else None
    )
    return EvaluationResult(
        model=handle.name,
        dataset=dataset.name,
        data_source=dataset.source,
        split=split,
        task=dataset.task,
        n=len(examples),
        metrics=values,
        seconds=seconds,
        examples_per_second=len(examples) / seconds if seconds > 0 else float("inf"),
        batch_size=batch_size,
        max_length=length,
        predictions=summary,
        lm=lm,
        notes=notes,
        outputs=in_dataset_order(outputs, predictor.labels),
        leakage=leakage(dataset, split, examples),
    )


def in_dataset_order(outputs: Outputs, labels: LabelMap | None) -> Outputs:
    """``outputs`` with probability columns in the dataset's class order, so models whose heads order the
    classes differently can be compared example by example against the same labels."""
    if outputs.proba is None or labels is None or labels.to_model == list(range(len(labels.to_model))):
        return outputs
    return Outputs(proba=outputs.proba[:, np.asarray(labels.to_model)], labels=outputs.labels)
