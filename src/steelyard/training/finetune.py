"""``finetune``: train a model on a task dataset and say what it cost and what it is worth.

One call resolves the model, picks the mode (full, frozen-base or head-only on cached
embeddings), trains with the configured optimizer and schedule, validates to early-stop and to
time the target metric, restores the best weights, scores them on the test split with bootstrap
intervals, and saves a model folder atomically. With ``nproc > 1`` the same function runs under
DDP (see :mod:`steelyard.training.launch`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from steelyard.data.augment import augment_examples
from steelyard.data.dataset import Example, TaskDataset, stratified_split
from steelyard.data.quality import leakage
from steelyard.errors import ConfigError, DataError
from steelyard.evaluation.adapters import Adapter
from steelyard.evaluation.evaluate import default_metrics, score
from steelyard.evaluation.labels import LabelMap
from steelyard.evaluation.progress import progress_enabled
from steelyard.metrics import parse_target, resolve_metric
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import LoadConfig, load_model
from steelyard.training.config import FinetuneConfig
from steelyard.training.dist import DistContext, weights_digest
from steelyard.training.features import FeatureAdapter, FeatureCache, build_cache
from steelyard.training.loop import LoopInput, predict_sharded
from steelyard.training.result import FinetuneResult
from steelyard.training.setup import Prepared, prepare
from steelyard.training.trainer import Charges, device_for, fit, seed_everything, trainable_parameters
from steelyard.units import Flops


def objective(cfg: FinetuneConfig, task: str) -> tuple[str, float | None]:
    """The validation metric and the target value (ConfigError when the task has no such metric)."""
    target_name, target_value = parse_target(cfg.target, task) if cfg.target else (None, None)
    if cfg.metric is not None:
        metric = resolve_metric(cfg.metric, task)
        if target_name is not None and target_name != metric:
            raise ConfigError(f"the target is on {target_name} but the validation metric is {metric}; use one metric")
    else:
        metric = target_name or ("perplexity" if task == "causal-lm" else "accuracy")
    return metric, target_value


def resolve_handle(model: ModelHandle | str, load: LoadConfig | None) -> ModelHandle:
    return model if isinstance(model, ModelHandle) else load_model(model, load or LoadConfig())


def check_data(dataset: TaskDataset) -> None:
    """Refuse, before any training, data a classifier cannot learn from: no examples, or one class."""
    if not dataset.train:
        raise DataError(f"{dataset.name!r} has no training examples")
    if dataset.task != "causal-lm":
        present = sorted(set(dataset.labels("train")))
        if dataset.num_labels < 2:
            raise DataError(f"{dataset.name!r} has {dataset.num_labels} class; classification needs at least 2 "
                            "(trained on one class a classifier learns nothing and its metrics are meaningless)")
        if len(present) < 2:  # the label list may name more classes than the training data holds
            name = dataset.label_names[present[0]] if present and present[0] < dataset.num_labels else present
            raise DataError(f"{dataset.name!r}: every training example has the class {name!r}; a classifier "
                            "trained on one class learns nothing and its metrics are meaningless")


def with_validation(dataset: TaskDataset, seed: int) -> tuple[TaskDataset, list[str]]:
    """Carve a validation split out of train when the data has none (never use test for it)."""
    if dataset.validation or len(dataset.train) < 10:
        return dataset, []
    labels = [ex.label for ex in dataset.train]
    tr, va, _ = stratified_split(labels, 0.1, 0.0, seed)
    out = dataset.with_splits(train=[dataset.train[i] for i in tr], validation=[dataset.train[i] for i in va])
    return out, [f"no validation split: carved {len(va)} examples out of train (seed {seed})"]


def relabel(dataset: TaskDataset, to_model: list[int] | None, names: list[str]) -> TaskDataset:
    """Dataset label ids mapped onto the model head's ids (a no-op for the identity)."""
    if to_model is None or to_model == list(range(len(to_model))):
        return dataset

    def move(examples: list[Example]) -> list[Example]:
        return [replace(ex, label=to_model[ex.label]) if ex.label is not None else ex for ex in examples]

    out = dataset.with_splits(train=move(dataset.train), validation=move(dataset.validation), test=move(dataset.test))
    out.label_names = list(names)
    return out


def finetune(
    model: ModelHandle | str,
    dataset: TaskDataset,
    config: FinetuneConfig | None = None,
    *,
    output: str | Path | None = None,
    overwrite: bool = False,
    load: LoadConfig | None = None,
    cache: FeatureCache | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` (a handle, or any source :func:`~steelyard.models.load_model` takes) on
    ``dataset`` and return a :class:`FinetuneResult`; with ``output`` the best model is saved there
    (an existing model there is replaced only with ``overwrite``; an output that is, holds or sits
    inside the model's or the data's own files is refused before training).

    ``cache`` reuses embeddings computed by :func:`~steelyard.training.features.build_cache` for
    head-only runs (optimizer comparisons, learning curves). With ``config.nproc > 1`` the run is
    distributed over that many local processes; inside ``torchrun`` it joins the existing group.
    """
    cfg = config or FinetuneConfig()
    objective(cfg, dataset.task)
    check_data(dataset)
    out = Path(output) if output is not None else None
    if out is not None:
        from steelyard.outputs import check_output

        source = model.path if isinstance(model, ModelHandle) else model
        check_output(out, (source, dataset.source), overwrite=overwrite)
    from steelyard.training.launch import check_nproc, launch, process_group

    dist = process_group(cfg)
    if dist is not None:
        return run_process(resolve_handle(model, load), dataset, cfg, out, dist, cache, overwrite)
    check_nproc(cfg)
    handle = resolve_handle(model, load)
    prepare(handle, with_validation(dataset, cfg.seed)[0], cfg)  # fail here, in one process, on bad input
    result: FinetuneResult = launch(run_worker, (handle, dataset, cfg, out, overwrite), cfg)
    return result


def run_worker(
    handle: ModelHandle, dataset: TaskDataset, cfg: FinetuneConfig, output: Path | None, overwrite: bool,
    dist: DistContext,
) -> FinetuneResult:
    """One launched process's fine-tune; the module stays in the worker (the caller loads ``output``)."""
    result = run_process(handle, dataset, cfg, output, dist, overwrite=overwrite)
    result.trained = None
    return result


def run_process(
    handle: ModelHandle,
    dataset: TaskDataset,
    cfg: FinetuneConfig,
    output: Path | None,
    dist: DistContext,
    cache: FeatureCache | None = None,
    overwrite: bool = False,
) -> FinetuneResult:
    """One process's share of a fine-tune (the whole of it when the world is one process)."""
    start = time.perf_counter()
    metric, target = objective(cfg, dataset.task)
    seed_everything(cfg.seed)
    device = device_for(cfg, dist)
    show = progress_enabled(cfg.progress, dist.rank)
    ds, notes = with_validation(dataset, cfg.seed)
    prep = prepare(handle, ds, cfg)
    notes.extend(prep.notes)
    ds = relabel(ds, prep.to_model, prep.label_names)
    if cfg.target is not None and not ds.validation:
        raise DataError(f"{ds.name!r} has too few examples for a validation split, which a target metric needs")
    lr = cfg.learning_rate(trainable_parameters(prep.module))

    time_offset, feature_flops = 0.0, Flops(0.0)
    loop_adapter: Adapter = prep.adapter
    augment = None
    if prep.mode == "head-only":
        assert prep.encoder is not None
        prep.encoder.to(device)
        if cache is None:
            splits = {"train": ds.train, "validation": ds.validation, "test": ds.test}
            cache = build_cache(prep.encoder, prep.adapter, splits, cfg.eval_batch_size, dist, device, show)
        else:
            time_offset = cache.seconds
        feature_flops = cache.train_flops
        loop_adapter = FeatureAdapter()
        train_features, val_features = cache.features("train"), cache.features("validation")
        test_features = cache.features("test")
        if cfg.augment:
            notes.append("augmentation does not apply to cached embeddings: skipped")
    else:
        train_features = prep.adapter.encode(ds.train)
        val_features = prep.adapter.encode(ds.validation)
        test_features = prep.adapter.encode(ds.test)
        if cfg.augment and ds.task != "causal-lm":
            aug = cfg.image_augment if ds.modality == "image" else cfg.text_augment

            def augment(examples: list[Example], epoch: int) -> list[Example]:
                return augment_examples(examples, aug, seed=cfg.seed * 1_000_003 + epoch)

    if not train_features:
        raise DataError(f"{ds.name!r}: nothing to train on after encoding (all training texts empty?)")
    outcome = fit(
        LoopInput(prep.module, loop_adapter, train_features, val_features, metric, target,
                  ds.train if augment else None, augment),
        cfg, lr=lr, dist=dist, device=device, progress=show, start=start,
        charges=Charges(seconds=time_offset, flops=feature_flops),
    )
    if outcome.adapters is not None:
        from steelyard.training.lora import adapter_note

        notes.append(adapter_note(outcome.adapters))
    test_metrics, summary = {}, None
    if test_features:
        outputs = predict_sharded(prep.module, loop_adapter, test_features, cfg.eval_batch_size, dist, device)
        names = default_metrics(ds.task)
        if metric not in names:
            names = (*names, metric)
        labels = LabelMap(list(range(ds.num_labels)), prep.label_names) if ds.num_labels else None
        test_metrics, summary = score(outputs, names, ds.task, labels, n_resamples=cfg.n_resamples, seed=cfg.seed)
    else:
        notes.append("no test split: no test metrics")
    digests = dist.all_objects(weights_digest(prep.module))
    from steelyard.training.launch import nproc_ignored

    ignored = nproc_ignored(cfg, dist)
    if ignored:
        notes.append(ignored)
    result = FinetuneResult(
        model=handle.name,
        dataset=ds.name,
        data_source=ds.source,
        task=ds.task,
        mode=prep.mode,
        optimizer=cfg.optimizer,
        lr=lr,
        label_names=prep.label_names,
        sizes=ds.sizes(),
        metric=metric,
        **outcome.summary(),
        cost=outcome.cost,
        test=test_metrics,
        predictions=summary,
        distributed=outcome.distributed(dist, digests),
        config=cfg,
        output=str(Path(output).resolve()) if output is not None else None,
        seconds=time.perf_counter() - start + time_offset,
        notes=notes,
        leakage=leakage(ds, "test") if test_features else [],
    )
    if output is not None and dist.main:
        from steelyard.training.save import save_model

        save_model(prep, output, result, overwrite=overwrite)
    dist.barrier()
    result.trained = trained_handle(prep, ds, device)
    return result


def trained_handle(prep: Prepared, ds: TaskDataset, device: torch.device) -> ModelHandle:
    """The trained model as a handle (a head-only model as encoder + pooled head in one module).

    It keeps the source's name, kind and path, so its tokenizer and image settings are found
    where the original's were.
    """
    from steelyard.evaluation.heads import PooledClassifier

    module = prep.module
    if prep.mode == "head-only" and prep.encoder is not None:
        module = PooledClassifier(prep.encoder, prep.module)  # type: ignore[arg-type]
    module.eval()
    sample = ds.train[:1] or ds.test[:1]
    batch = prep.adapter.collate(prep.adapter.encode(sample))
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    task = "causal-lm" if ds.task == "causal-lm" else (
        "image-classification" if ds.modality == "image" else "text-classification")
    h = prep.handle
    return ModelHandle(
        name=h.name, source_kind=h.source_kind, task=task, module=module,
        inputs=tuple(inputs.values()) if prep.adapter.positional else inputs,
        config=getattr(module, "config", None) or h.config, path=h.path,
    )

