"""``run_recipe``: apply a recipe's steps in order and measure the model before and after.

The original model is never modified: compression steps work on copies (see
:func:`steelyard.compression.compress`) and training steps train the copy that the previous
step produced. The before / after cards are measured in the same process on the same data,
with the two models timed in alternating rounds.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from steelyard.compression.api import HISTORY_ATTR, CompressedModel, compress
from steelyard.compression.fidelity import compare_outputs, non_finite
from steelyard.compression.recipe.data import RecipeData, prepare_data
from steelyard.compression.recipe.generation import generates, measure_generation_pair, random_prompts, text_prompts
from steelyard.compression.recipe.measure import (
    Inputs,
    ModelCard,
    Quality,
    outputs_on,
    quality,
    quality_change,
    size_card,
    time_pair,
    timing_inputs,
)
from steelyard.compression.recipe.parse import Recipe, RecipeStep
from steelyard.compression.recipe.result import RecipeResult, StepRecord
from steelyard.compression.recipe.train_steps import distill_step, finetune_step
from steelyard.data.dataset import TaskDataset
from steelyard.data.quality import leakage
from steelyard.errors import CompressionError, ConfigError, DataError
from steelyard.evaluation.progress import progress_enabled
from steelyard.models.handle import ModelHandle
from steelyard.profiling.counting import count_forward
from steelyard.profiling.generation_config import GenerationWorkload
from steelyard.profiling.generation_count import check_generative
from steelyard.units import Bytes

#: What a recipe generates by default: short enough for CI, long enough that decode dominates TTFT.
RECIPE_GENERATION = GenerationWorkload(prompt_len=32, new_tokens=32, batch_sizes=(1, 8))


@dataclass(frozen=True)
class RecipeOptions:
    """How the recipe is measured.

    ``batch_size`` × ``max_length`` is the timing batch (real examples from the evaluation split
    when there is data). ``rounds`` alternating timings of each model after ``warmup`` calls.
    ``eval_split``: ``test`` for a report, ``validation`` inside a search.

    A causal LM also generates (:mod:`.generation`) the ``generation`` workload, decode timed at each
    of its batch sizes with both models interleaved, and its greedy generations compared with the
    original's on ``agreement_prompts`` prompts.
    """

    eval_split: str = "test"
    batch_size: int = 32
    max_length: int = 128
    rounds: int = 10
    warmup: int = 2
    threads: int | None = None
    eval_batch_size: int = 64
    tokenizer: str | None = None
    n_resamples: int = 1000
    seed: int = 0
    progress: bool | None = None
    measure_latency: bool = True
    calibration_batches: int = 16
    #: Serve the result in this runtime (steelyard.backends.serve.SERVING): timed there, saved as its artifact.
    serve: str | None = None
    #: Causal LMs: the greedy workload both models generate (``prompt_len`` prompt tokens, exactly ``new_tokens``
    #: new ones, decode timed at each of ``batch_sizes`` in ``rounds`` interleaved rounds after ``warmup``
    #: calls; the workload's own ``runs`` / ``warmup`` are the profile's). None: no generation rows.
    generation: GenerationWorkload | None = field(default_factory=lambda: RECIPE_GENERATION)
    #: Causal LMs: prompts cut from the evaluation text on which greedy generations are compared.
    agreement_prompts: int = field(default=8, metadata={"help": "causal LMs: prompts from the evaluation text on "
                                                              "which greedy generations are compared"})

    def __post_init__(self) -> None:
        gen = self.generation
        if gen is not None and gen.new_tokens == 1:
            raise ConfigError("--new-tokens must be 0 (no generation) or at least 2 (a decode step after the first "
                              "token), got 1")
        if self.agreement_prompts < 1:
            raise ConfigError(f"--agreement-prompts must be at least 1, got {self.agreement_prompts}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"batch sizes must be at least 1, got {self.batch_size} / {self.eval_batch_size}")
        if self.rounds < 1 or self.warmup < 0:
            raise ConfigError(f"timing rounds must be >= 1 and warm-up >= 0, got {self.rounds} / {self.warmup}")
        if self.max_length < 2:
            raise ConfigError(f"max length must be at least 2 tokens, got {self.max_length}")


def needs_data(recipe: Recipe, serve: str | None = None) -> bool:
    """Whether running ``recipe`` served in ``serve`` needs data, even with nothing to train: a calibrated step
    (static int8, AWQ, GPTQ), or int8 in a serving runtime, which calibrates on the data's training batches
    (NNCF's in OpenVINO; :func:`steelyard.backends.serve.serve_in`)."""
    return recipe.needs_data or (serve is not None and bool(recipe.steps) and recipe.steps[-1].quantizes)


def run_recipe(
    handle: ModelHandle,
    recipe: Recipe,
    dataset: TaskDataset | None = None,
    options: RecipeOptions | None = None,
) -> RecipeResult:
    """Run ``recipe`` on a copy of ``handle``'s model and measure it against the original."""
    opts = options or RecipeOptions()
    start = time.perf_counter()
    if handle.on_meta:
        raise ConfigError(f"compress needs real weights; '{handle.name}' was loaded from its config only")
    if needs_data(recipe, opts.serve) and dataset is None:
        needing = next((s.name for s in recipe.steps if s.needs_data), None)
        raise DataError(f"the recipe step {needing} needs data: pass --data <source>" if needing else
                        f"{opts.serve} int8 calibrates on the recipe's data: pass --data <source>")
    generative = opts.generation is not None and generates(handle, opts.generation.new_tokens)
    if generative:  # a prompt + new tokens longer than the model's positions fails before any work
        check_generative(handle, opts.generation)  # type: ignore[arg-type]
    show = progress_enabled(opts.progress)
    data = prepare_data(handle, dataset, eval_split=opts.eval_split, max_length=opts.max_length,
                        tokenizer=opts.tokenizer, seed=opts.seed) if dataset is not None else None
    if data is not None and data.module is not handle.module:  # head-only checkpoint: compress encoder + head
        handle = dataclasses.replace(handle, module=data.module)
    inputs = _timing_inputs(handle, data, opts)
    original = handle.module.eval()
    prompts = _prompts(handle, data, opts) if generative else None  # too little text fails before any work

    before = size_card(original)
    float_count = count_forward(original, inputs)
    before.apply_count(float_count)
    before_quality = _score(before, original, data, opts, baseline=True)

    current, compressed, records = handle, None, []
    for i, step in enumerate(recipe.steps):
        if step.quantizes and i > 0:
            # An ONNX Runtime session runs outside torch's dispatcher: count the float model it comes from.
            float_count = count_forward(current.module, inputs)
        if step.quantizes and opts.serve == "openvino":
            continue  # int8 is NNCF's, in OpenVINO, after the structure steps (steelyard.backends.serve)
        record, current, compressed = _run_step(step, current, compressed, handle, data, opts, show)
        records.append(record)
    if compressed is None:  # the only step was left to the serving runtime
        compressed = _as_compressed(_copy(handle), handle, None, (), recipe.text)
    if opts.serve is not None:
        from steelyard.backends.serve import serve_in

        if not recipe.steps[-1].quantizes:  # the runtime runs outside torch's dispatcher: count the torch model
            float_count = count_forward(compressed.handle.module, inputs)
        compressed = serve_in(opts.serve, compressed, inputs, data, int8=recipe.steps[-1].quantizes,
                              calibration_batches=opts.calibration_batches, batch_size=opts.batch_size,
                              threads=opts.threads)
    module = compressed.handle.module.eval()

    after = size_card(module)
    if recipe.steps[-1].quantizes or opts.serve is not None:
        after.apply_count(float_count)
        after.flops_note = ("quantized kernels do the same multiply-adds in lower precision: FLOPs and activations "
                            "are those of the float model they came from") if recipe.steps[-1].quantizes else (
            f"counted on the torch model served by {opts.serve} (the runtime's own kernels are not traced)")
    else:
        after.apply_count(count_forward(module, inputs))
    fidelity = compare_outputs(outputs_on(original, inputs), outputs_on(module, inputs), handle.task)
    speed = None
    if opts.measure_latency:
        before.latency, after.latency, speed = time_pair(original, module, inputs, rounds=opts.rounds,
                                                         warmup=opts.warmup, threads=opts.threads)
        for card in (before, after):
            card.throughput = card.latency.batch_size / float(card.latency.median)  # type: ignore[union-attr]
    notes = list(data.notes) if data is not None else []
    if prompts is not None:
        _generation(handle, compressed, prompts, opts, before, after, notes)
    after_quality = _score(after, module, data, opts)
    changes = {}
    if after_quality is not None and before_quality is not None:
        if len(after_quality.predictions):
            agreement = float((after_quality.predictions == before_quality.predictions).mean())
            after.agreement, before.agreement = agreement, 1.0
        changes = quality_change(before_quality, after_quality, data.task,  # type: ignore[union-attr]
                                 n_resamples=opts.n_resamples, seed=opts.seed)
    timing: dict[str, Any] = {"batch_size": _rows(inputs), "shape": _shape(inputs), "rounds": opts.rounds,
                              "warmup": opts.warmup, "threads": opts.threads or torch.get_num_threads()}
    return RecipeResult(
        model=handle.name, recipe=recipe.text, data=data.name if data else None,
        eval_split=data.eval_split if data else None, before=before, after=after, steps=records,
        backend=compressed.backend, fidelity=fidelity, timing=timing, seconds=time.perf_counter() - start,
        notes=notes, compressed=compressed, speed=speed, changes=changes,
        leakage=leakage(dataset, opts.eval_split) if dataset is not None else [],
    )


def _prompts(handle: ModelHandle, data: RecipeData | None, opts: RecipeOptions) -> tuple[torch.Tensor, str]:
    """The fixed prompt set both models generate from, and where it came from."""
    work = opts.generation
    assert work is not None
    if data is not None and data.task == "causal-lm":
        return text_prompts(data.evaluation, opts.agreement_prompts, work.prompt_len), "evaluation text"
    return random_prompts(handle, opts.agreement_prompts, work.prompt_len, opts.seed), "random token ids"


def _generation(handle: ModelHandle, compressed: CompressedModel, prompt_set: tuple[torch.Tensor, str],
                opts: RecipeOptions, before: ModelCard, after: ModelCard, notes: list[str]) -> None:
    """Fill both cards' generation rows (decode tokens/s, TTFT, TPOT, KV bytes, agreement) in this run."""
    work = opts.generation
    assert work is not None
    if not generates(compressed.handle, work.new_tokens):
        notes.append(f"generation not measured: the {compressed.backend} model cannot generate() in torch")
        return
    prompts, source = prompt_set
    before.generation, after.generation = measure_generation_pair(
        handle, compressed.handle, prompts, source=source, new_tokens=work.new_tokens, batch_sizes=work.batch_sizes,
        weights=(before.bytes, after.bytes), timed=opts.measure_latency, rounds=opts.rounds, warmup=opts.warmup,
        threads=opts.threads)


def _score(card: ModelCard, module: torch.nn.Module, data: RecipeData | None, opts: RecipeOptions,
           baseline: bool = False) -> Quality | None:
    """Fill ``card``'s metrics on the evaluation split; returns the per-example quality (None without data).

    The original's score is kept on ``data`` (same model, data and resamples give the same numbers), so
    the trials of a search score it once.
    """
    if data is None:
        return None
    if baseline and data.baseline is not None and data.baseline[0] == (opts.eval_batch_size, opts.n_resamples):
        q = data.baseline[1]
    else:
        q = quality(module, data.adapter, data.evaluation, data.task, data.label_names,
                    batch_size=opts.eval_batch_size, n_resamples=opts.n_resamples, seed=opts.seed)
        if baseline:
            data.baseline = ((opts.eval_batch_size, opts.n_resamples), q)
    card.metrics, card.metric = q.metrics, data.metric
    return q


def _run_step(
    step: RecipeStep,
    current: ModelHandle,
    compressed: CompressedModel | None,
    original: ModelHandle,
    data: RecipeData | None,
    opts: RecipeOptions,
    show: bool,
) -> tuple[StepRecord, ModelHandle, CompressedModel]:
    t0 = time.perf_counter()
    if step.trains:
        assert data is not None
        work = compressed.handle if compressed is not None else _copy(current)
        module = work.module
        if step.name == "distill":
            training = distill_step(module, original.module, step.config, data,
                                    eval_batch_size=opts.eval_batch_size, progress=show)
        else:
            training = finetune_step(module, step.config, data, eval_batch_size=opts.eval_batch_size, progress=show)
        _check_finite(step.name, module, data)
        history = (*getattr(module, HISTORY_ATTR, ()), {"method": step.name, "config": dataclasses.asdict(step.config)})
        module.__dict__[HISTORY_ATTR] = history
        result = _as_compressed(work, original, compressed, history, step.name)
        size = size_card(module)
        record = StepRecord(step.name, step.text(), time.perf_counter() - t0, size.params, int(size.bytes),
                            training.notes, None, training.best_validation, training.steps)
        return record, result.handle, result
    calibration = None
    if data is not None and step.needs_data:
        calibration = data.batches(opts.batch_size, opts.calibration_batches,
                                   with_labels=getattr(step.config, "importance", None) == "taylor")
    result = compress(current, step.config, data=calibration)
    if compressed is not None:
        result = dataclasses.replace(result, params_before=compressed.params_before,
                                     bytes_before=compressed.bytes_before, nonzero_before=compressed.nonzero_before,
                                     notes=(*compressed.notes, *result.notes), source_path=original.path)
    else:
        result = dataclasses.replace(result, source_path=original.path)
    record = StepRecord(step.name, step.text(), time.perf_counter() - t0, result.params_after,
                        int(result.bytes_after), list(result.notes[len(compressed.notes) if compressed else 0:]),
                        result.fidelity)
    return record, result.handle, result


def _check_finite(name: str, module: torch.nn.Module, data: RecipeData) -> None:
    """Training that diverged leaves NaN/Inf weights: refuse the model rather than report its score."""
    bad, total = non_finite(outputs_on(module, timing_inputs(data.adapter, data.validation or data.train, 2)))
    if bad:
        raise CompressionError(f"{name}: the trained model outputs {bad} NaN/Inf values of {total}; training "
                               "diverged (lower lr, or fewer steps)")


def _copy(handle: ModelHandle) -> ModelHandle:
    import copy

    module = copy.deepcopy(handle.module)
    return dataclasses.replace(handle, module=module, config=getattr(module, "config", None) or handle.config,
                               path=None, weights_files=[])


def _as_compressed(
    work: ModelHandle, original: ModelHandle, previous: CompressedModel | None, history: tuple[Any, ...], name: str
) -> CompressedModel:
    size = size_card(work.module)
    first = size_card(original.module) if previous is None else None
    return CompressedModel(
        handle=work, method=name, config=None, backend="torch",
        params_before=previous.params_before if previous else first.params,  # type: ignore[union-attr]
        params_after=size.params,
        bytes_before=previous.bytes_before if previous else first.bytes,  # type: ignore[union-attr]
        bytes_after=Bytes(size.bytes),
        nonzero_before=previous.nonzero_before if previous else first.nonzero,  # type: ignore[union-attr]
        nonzero_after=size.nonzero, notes=previous.notes if previous else (), history=history,
        source_path=original.path,
    )


def _timing_inputs(handle: ModelHandle, data: RecipeData | None, opts: RecipeOptions) -> Inputs:
    if data is not None:
        return timing_inputs(data.adapter, data.evaluation, opts.batch_size)
    return handle.inputs_for_batch(opts.batch_size)


def _first(inputs: Inputs) -> torch.Tensor:
    return inputs[0] if isinstance(inputs, tuple) else next(iter(inputs.values()))


def _rows(inputs: Inputs) -> int:
    return int(_first(inputs).shape[0])


def _shape(inputs: Inputs) -> list[int]:
    return list(_first(inputs).shape)
