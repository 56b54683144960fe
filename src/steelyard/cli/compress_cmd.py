"""``steelyard compress``: run a recipe of compression and training steps and show, measured,
what it bought: size, FLOPs, latency and throughput (timed against the original in the same
run), working memory, the task metric with its confidence interval, and fidelity.

Bad input fails before any work: an unknown step or parameter (the valid ones are listed), an
amount outside (0, 1), a quantization that is not last, a step that needs data without
``--data``, an output that would overwrite the original. The original model files are never
written; the output is written atomically.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import (
    CleanOpt,
    JsonOpt,
    LabelColumnOpt,
    MaxEvalOpt,
    MaxTrainOpt,
    SaveOpt,
    SeedOpt,
    TaskOpt,
    TextColumnOpt,
    ValFractionOpt,
)
from steelyard.cli.evaluate_cmd import MaxLengthOpt, ModelArg, TokenizerOpt
from steelyard.cli.hardware_cmd import HARDWARE, apply_hardware_options
from steelyard.cli.options import Group, Opt, with_options
from steelyard.cli.state import OPTIONS
from steelyard.errors import ConfigError
from steelyard.profiling.generation_config import GenerationWorkload, parse_batch_sizes
from steelyard.reporting.markup import escape

if TYPE_CHECKING:
    from steelyard.compression.recipe import Recipe

RecipeOpt = Annotated[str, typer.Option(help="steps separated by ';' (e.g. \"prune:structured,amount=0.3; "
                                        "finetune:epochs=1; quantize:int8-dynamic\") or a recipe.yaml file")]
DataArg = Annotated[str | None, typer.Option("--data", help="task data for the metric, recovery training and "
                                            "calibration (bbc-news, digits, CSV/JSONL/Parquet, folder, hf:...)")]
BackendOpt = Annotated[str | None, typer.Option(help="kernels for the quantization step: torch (x86/fbgemm) or "
                                                "onnxruntime (saves an .onnx model); or the runtime to serve the "
                                                "result in: torch-compile, openvino (int8 by NNCF; an IR folder)")]

#: The greedy workload both models of a causal LM generate (RecipeOptions.generation), from the workload's fields.
DECODE = Group.of(
    GenerationWorkload,
    Opt("prompt_len", default=32, help="causal LMs: prompt tokens per sequence, cut from the evaluation text"),
    Opt("new_tokens", default=32, help="causal LMs: greedy tokens both models generate per prompt, for decode "
        "tokens/s, TTFT, TPOT, KV bytes and agreement (0: no generation)"),
    Opt("batch_sizes", param="decode_batch_sizes", annotation=str, default="1,8",
        help="causal LMs: batch sizes at which decode is timed, comma-separated",
        parse=lambda text: parse_batch_sizes(text, "--decode-batch-sizes")),
)


@with_options(HARDWARE, DECODE)
def compress_command(
    model: ModelArg,
    recipe: RecipeOpt,
    output: Annotated[Path | None, typer.Option(help="where to save the compressed model (a folder, or a "
                                                "file.onnx with --backend onnxruntime)")] = None,
    data: DataArg = None,
    backend: BackendOpt = None,
    hardware: Annotated[str, typer.Option(help="local (timed on this machine) and catalog devices to project "
                                          "both models onto, comma-separated (see `steelyard hardware list`)")
                        ] = "local",
    batch_size: Annotated[int, typer.Option(help="timing batch (real examples from the evaluation split)")] = 32,
    max_length: MaxLengthOpt = 128,
    rounds: Annotated[int, typer.Option(help="alternating timing rounds of original and compressed")] = 10,
    threads: Annotated[int | None, typer.Option(help="torch threads while timing (default: torch's)")] = None,
    eval_split: Annotated[str, typer.Option(help="split for the metric: test or validation")] = "test",
    task: TaskOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    tokenizer: TokenizerOpt = None,
    clean: CleanOpt = None,
    max_train_examples: MaxTrainOpt = None,
    max_eval_examples: MaxEvalOpt = None,
    val_fraction: ValFractionOpt = 0.1,
    seed: SeedOpt = 0,
    agreement_prompts: Annotated[int, typer.Option(help="causal LMs: prompts from the evaluation text on which "
                                                   "greedy generations are compared")] = 8,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing output")] = False,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
    save: SaveOpt = True,
    *,
    opts: dict[str, Any],
) -> None:
    """Compress a model with a recipe; print a measured before / after table; save it and record the run."""
    from steelyard.backends.serve import SERVING, route
    from steelyard.cli.common import save_outputs
    from steelyard.cli.data_cmd import DataOptions, load_task_data
    from steelyard.cli.evaluate_cmd import load_handle
    from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
    from steelyard.data.options import data_task_for
    from steelyard.outputs import check_output
    from steelyard.profiling.projection import catalog_devices, project_pair
    from steelyard.reporting.compress_view import render_compression
    from steelyard.reporting.run_warnings import leakage_warnings, print_warnings

    apply_hardware_options(opts, hardware)
    devices = catalog_devices([h for h in hardware.split(",") if h.strip()])  # a typo fails before any work
    if backend not in (None, "torch", "onnxruntime", *SERVING):
        raise ConfigError(f"--backend must be torch, onnxruntime, {' or '.join(SERVING)}, got '{backend}'")
    parsed, serve = route(parse_recipe(recipe), backend)
    generation = DECODE.build(opts)
    options = RecipeOptions(eval_split=eval_split, batch_size=batch_size, max_length=max_length, rounds=rounds,
                            threads=threads, tokenizer=tokenizer, seed=seed, serve=serve,
                            generation=generation if generation.new_tokens > 0 else None,
                            agreement_prompts=agreement_prompts)
    if output is not None:
        check_onnx_output(output, parsed)
        check_output(output, (model, data), overwrite=overwrite)
    handle = load_handle(model, task, max_length)
    dataset, data_opts = None, None
    if data is not None:
        data_opts = DataOptions(data, data_task_for(handle, task), text_column, label_column, "image", seed, clean,
                                max_train_examples, max_eval_examples, val_fraction)
        dataset = load_task_data(data_opts)
    on = f" on {escape(dataset.name)}" if dataset is not None else ""
    console.print(f"compressing {escape(model)}: {escape(parsed.text)}{on}")
    result = run_recipe(handle, parsed, dataset, options)
    if output is not None:
        result.save(output, overwrite=overwrite, preprocessing_from=handle.path)
    payload = result.to_dict()
    if devices and result.compressed is not None:
        from steelyard.reporting.console import render_projection
        from steelyard.serialize import to_dict

        payload["projected"] = to_dict(project_pair(handle, result.compressed.handle, devices, batch_size))
    render_compression(payload, console)
    if payload.get("projected"):
        render_projection(payload["projected"], console)
    headline = result.after.headline or result.before.headline
    warnings = leakage_warnings(result.leakage, headline.name if headline is not None else None)
    print_warnings(warnings, console)
    if output is not None:
        console.print(f"compressed model saved to {escape(result.output)}")
    save_outputs({**payload, "warnings": warnings}, json_out, None)
    if save:
        from steelyard.store.record import record_compression

        changed = [(p.name, opts[p.name]) for p in DECODE.parameters() if opts[p.name] != p.default]
        if agreement_prompts != 8:
            changed.append(("agreement_prompts", agreement_prompts))
        extra = tuple(a for name, value in changed for a in ("--" + name.replace("_", "-"), str(value)))
        command = _command(model, recipe, data, output, backend, batch_size, max_length, eval_split, extra)
        run_id, url = record_compression(result, [options, parsed.text] + ([data_opts] if data_opts else []),
                                         command, OPTIONS.store_url, labels=OPTIONS.labels, data=dataset)
        console.print(f"saved as run {run_id} in {escape(url)}")


def check_onnx_output(output: Path, recipe: Recipe) -> None:
    """Only an onnxruntime-backend model saves as one ``.onnx`` file: say so before the recipe runs."""
    if output.suffix == ".onnx" and not any(getattr(s.config, "backend", None) == "onnxruntime"
                                            for s in recipe.steps):
        raise ConfigError(f"--output {output}: only an onnxruntime-backend model saves as an .onnx file; "
                          "give a folder, or --backend onnxruntime")


def _command(model: str, recipe: str, data: str | None, output: Path | None, backend: str | None,
             batch_size: int, max_length: int, eval_split: str, extra: tuple[str, ...] = ()) -> str:
    args = ["steelyard", "compress", model, "--recipe", recipe]
    if data:
        args += ["--data", data]
    if output is not None:
        args += ["--output", str(output)]
    if backend:
        args += ["--backend", backend]
    args += ["--batch-size", str(batch_size), "--max-length", str(max_length)]
    if eval_split != "test":
        args += ["--eval-split", eval_split]
    args += extra  # options left at other than their defaults (the generation workload)
    return " ".join(shlex.quote(a) for a in args)


def methods_command() -> None:
    """List the compression methods and recipe steps with their parameters."""
    import dataclasses

    from steelyard.compression.recipe.steps import TRAINING_STEPS
    from steelyard.compression.registry import list_methods

    for info in list_methods():
        console.print(info.describe(), highlight=False, markup=False)
    for name, cls in TRAINING_STEPS.items():
        params = ", ".join(f"{f.name} (default {f.default})" for f in dataclasses.fields(cls))
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        console.print(f"{name}: {summary} [{params}]", highlight=False, markup=False)
