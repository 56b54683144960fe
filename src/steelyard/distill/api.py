"""``distill``: train a smaller student to imitate a teacher, and prove what it kept and what it saves.

One call checks the inputs, builds the student (a spec such as ``layers=3`` or another model),
trains it on the labels and the teacher's soft labels (optionally its hidden states), restores the
best validation state, scores teacher and student on the same test split with bootstrap CIs
(:func:`steelyard.evaluation.evaluate`), counts both models' parameters and FLOPs on the same
harness, and saves the student atomically with its tokenizer so ``steelyard evaluate <output>``
works. Training goes through the one trainer (:func:`steelyard.training.trainer.fit`) and the one
launcher (:mod:`steelyard.training.launch`): with ``train.nproc > 1`` it runs under DDP on local
processes; inside ``torchrun`` it joins the existing process group (every rank then scores the models, and
only rank 0 saves).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from steelyard.data.dataset import TaskDataset
from steelyard.distill.config import DistillConfig
from steelyard.distill.costs import counting_inputs, model_cost, student_handle
from steelyard.distill.plan import STATE_FILE, Plan, label_config, plan_run, train_process, train_worker
from steelyard.distill.result import DistillResult, TeacherCost
from steelyard.distill.train import DistillOutcome
from steelyard.evaluation.adapters import tokenizer_source
from steelyard.evaluation.progress import progress_enabled
from steelyard.metrics import METRICS, MetricValue
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import LoadConfig
from steelyard.training.dist import DistContext, launched_by_torchrun, weights_digest
from steelyard.training.finetune import resolve_handle
from steelyard.units import Flops


def _evaluation_tokenizer(handle: ModelHandle, fallback: str | None) -> str | None:
    """Where to read ``handle``'s tokenizer when scoring it: its own, else ``--tokenizer``."""
    return tokenizer_source(handle) or fallback


def _test_metrics(plan: Plan, cfg: DistillConfig, handle: ModelHandle, tokenizer: str | None) -> dict[
        str, MetricValue]:
    from steelyard.evaluation.evaluate import default_metrics, evaluate

    if not plan.dataset.test:
        return {}
    names = list(default_metrics(plan.dataset.task))
    if plan.metric not in names:
        names.append(plan.metric)
    t = cfg.train
    result = evaluate(handle, plan.dataset, "test", names, t.eval_batch_size, max_length=t.max_length,
                      tokenizer=tokenizer, n_resamples=t.n_resamples, seed=t.seed, progress=False)
    return result.metrics


def retained_fraction(metric: str, teacher: dict[str, MetricValue], student: dict[str, MetricValue]) -> float | None:
    """Student / teacher on ``metric`` (teacher / student when lower is better); None without both."""
    if metric not in teacher or metric not in student:
        return None
    t, s = teacher[metric].value, student[metric].value
    higher = METRICS[metric].higher_is_better if metric in METRICS else True
    num, den = (s, t) if higher else (t, s)
    return num / den if den else None


def _train(plan: Plan, teacher: ModelHandle, student: str | ModelHandle, dataset: TaskDataset,
           cfg: DistillConfig) -> tuple[DistillOutcome, DistContext, list[str]]:
    """Train in this process, in torchrun's group, or on ``nproc`` launched processes."""
    from steelyard.training.launch import launch, launched_context, process_group

    dist = process_group(cfg.train)
    if dist is not None:
        outcome = train_process(plan, cfg, dist, progress_enabled(cfg.train.progress, dist.rank))
        return outcome, dist, dist.all_objects(weights_digest(plan.student.module))
    from safetensors.torch import load_model

    with tempfile.TemporaryDirectory(prefix="steelyard-distill-") as tmp:
        outcome, digests = launch(train_worker, (teacher, student, dataset, cfg, Path(tmp)), cfg.train,
                                  "distillation")
        load_model(plan.student.module, str(Path(tmp) / STATE_FILE))
    plan.student.module.to(teacher.device).eval()
    return outcome, launched_context(cfg.train), digests


def teacher_cost(outcome: DistillOutcome, n_train: int) -> TeacherCost:
    """What the teacher cost, and what caching its logits saved: a teacher forward on every sample
    seen after the first pass over the data, at the caching pass's rate."""
    reused = 0 if outcome.teacher_online else max(0, outcome.samples - n_train)
    per_example = outcome.teacher_cache_seconds / n_train if n_train else 0.0
    return TeacherCost(outcome.teacher_online, outcome.teacher_flops_per_sample, outcome.teacher_cache_flops,
                       outcome.teacher_cache_seconds, Flops(outcome.teacher_flops_per_sample * reused),
                       reused_samples=reused, saved_seconds=per_example * reused)


def distill(
    teacher: ModelHandle | str,
    student: str | ModelHandle,
    dataset: TaskDataset,
    cfg: DistillConfig | None = None,
    *,
    output: str | Path | None = None,
    overwrite: bool = False,
    load: LoadConfig | None = None,
) -> DistillResult:
    """Distil ``teacher`` into ``student`` on ``dataset``; see the module docstring.

    ``teacher`` is a handle or any source :func:`~steelyard.models.load_model` takes, a fine-tuned
    classifier for the dataset's labels, or a causal LM with plain text (``causal-lm`` data: the
    student learns the teacher's next-token distributions, scored by perplexity). ``student`` is
    ``"layers=K"``, ``"hidden=H"`` (with ``heads=``, ``ffn=``; combinable), another model source, or a handle
    (:func:`~steelyard.distill.student.make_student`). With ``output`` the student is saved there
    (an existing model only with ``overwrite``; never over the teacher's, the student's or the data's files).
    """
    from steelyard.training.launch import nproc_ignored

    cfg = cfg or DistillConfig()
    start = time.perf_counter()
    out = Path(output) if output is not None else None
    if out is not None:
        from steelyard.outputs import check_output

        sources = [m.path if isinstance(m, ModelHandle) else m for m in (teacher, student)]
        check_output(out, (*sources, dataset.source), overwrite=overwrite)
    t_handle = resolve_handle(teacher, load)
    plan = plan_run(t_handle, student, dataset, cfg)
    outcome, dist, digests = _train(plan, t_handle, student, dataset, cfg)

    task = plan.task
    module = plan.student.module
    label_config(module, plan.label_names)
    prep = plan.student.preprocessing
    label = student if isinstance(student, str) else student.name
    s_handle = student_handle(module, prep, str(out) if out is not None else f"student ({label})", task)
    teacher_adapter = plan.teacher_adapter or plan.adapter
    teacher_test = _test_metrics(plan, cfg, t_handle, _evaluation_tokenizer(t_handle, cfg.train.tokenizer))
    student_test = _test_metrics(plan, cfg, s_handle, _evaluation_tokenizer(prep, cfg.train.tokenizer))
    t_cost = model_cost(t_handle, task, teacher_adapter)
    s_cost = model_cost(s_handle, task, plan.adapter)
    teacher_run = teacher_cost(outcome, len(plan.dataset.train))
    notes = [*plan.notes, *outcome.notes]
    if outcome.adapters is not None:
        from steelyard.training.lora import adapter_note

        notes.append(adapter_note(outcome.adapters))
    ignored = nproc_ignored(cfg.train, dist)
    if ignored:
        notes.append(ignored)
    if not plan.dataset.test:
        notes.append("no test split: no test metrics")
    result = DistillResult(
        teacher=t_handle.name,
        student=label,
        dataset=plan.dataset.name,
        data_source=plan.dataset.source,
        task=plan.dataset.task,
        label_names=plan.label_names,
        sizes=plan.dataset.sizes(),
        metric=plan.metric,
        teacher_test=teacher_test,
        student_test=student_test,
        teacher_cost=t_cost,
        student_cost=s_cost,
        retained=retained_fraction(plan.metric, teacher_test, student_test),
        flops_ratio=float(s_cost.flops) / float(t_cost.flops) if float(t_cost.flops) else float("nan"),
        params_ratio=s_cost.parameters / t_cost.parameters if t_cost.parameters else float("nan"),
        **outcome.summary(),
        training=outcome.cost,
        teacher_run=teacher_run,
        distributed=outcome.distributed(dist, digests),
        config=cfg,
        output=str(out.resolve()) if out is not None else None,
        seconds=time.perf_counter() - start,
        student_notes=list(plan.student.notes),
        notes=notes,
    )
    if out is not None and dist.main:
        from steelyard.distill.save import save_student

        factory = prep.name if prep.source_kind == "factory" else None
        save_student(module, getattr(plan.adapter, "tokenizer", None), prep.path, out, result, factory,
                     overwrite=overwrite)
    if launched_by_torchrun():
        dist.barrier()
    inputs, _ = counting_inputs(s_handle, task, plan.adapter)
    s_handle = s_handle.with_inputs(inputs)
    if out is not None:
        s_handle.source_kind, s_handle.path = "local", out.resolve()
    result.trained = s_handle
    return result
