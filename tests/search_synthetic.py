"""Synthetic objectives for the search tests: cheap functions of the parameters with known optima.

Module-level (picklable) so that trials can run in a spawned child process; also runnable as a
worker script (``python tests/search_synthetic.py --storage URL --study NAME --trials N``) so the
tests can start several workers on one study, interrupt them and kill them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

QUADRATIC_SPACE = {
    "params": {
        "x": {"type": "int", "low": 0, "high": 4},
        "y": {"type": "categorical", "choices": ["a", "b", "c"]},
        "z": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
    }
}

#: A recipe-like space: accuracy falls and cost shrinks with depth pruning and int8.
TRADEOFF_SPACE = {
    "params": {
        "depth": {"type": "float", "low": 0.0, "high": 0.75, "step": 0.25},
        "int8": {"type": "bool"},
    },
    "recipe": "prune:layers,amount={depth}; quantize:{int8}",
}
_LOSS = {0.0: 0.0, 0.25: 0.002, 0.5: 0.008, 0.75: 0.05}


def quadratic(ctx: Any) -> dict[str, float]:
    """Minimum 0 at x=3, y=b, z=0.5."""
    p = ctx.params
    loss = (p["x"] - 3) ** 2 + (0.0 if p["y"] == "b" else 2.0) + 4 * (p["z"] - 0.5) ** 2
    return {"loss": loss, "x_seen": float(p["x"])}


def tradeoff(ctx: Any) -> dict[str, float]:
    """accuracy:max / cost:min; within a 1-point drop the cheapest is depth 0.25 + int8 (cost 0.375)."""
    p = ctx.params
    accuracy = 0.95 - _LOSS[float(p["depth"])] - (0.003 if p["int8"] else 0.0)
    cost = (1 - float(p["depth"])) * (0.5 if p["int8"] else 1.0)
    return {"accuracy": accuracy, "cost": cost, "drop": round((0.95 - accuracy) * 100, 9)}


def sleepy(ctx: Any) -> dict[str, float]:
    time.sleep(float(os.environ.get("SYNTH_SLEEP", "0.05")))
    return quadratic(ctx)


def fails_on_b(ctx: Any) -> dict[str, float]:
    if ctx.params["y"] == "b":
        raise RuntimeError("y=b breaks this model")
    return quadratic(ctx)


def hangs_on_x0(ctx: Any) -> dict[str, float]:
    if ctx.params["x"] == 0:
        time.sleep(3600)
    return quadratic(ctx)


def dies_on_c(ctx: Any) -> dict[str, float]:
    if ctx.params["y"] == "c":
        os.kill(os.getpid(), signal.SIGKILL)
    return quadratic(ctx)


def reports(ctx: Any) -> dict[str, float]:
    """Reports a curve per step; trials with y != b have a bad curve the median pruner should stop."""
    value = quadratic(ctx)["loss"]
    for step in range(5):
        ctx.report(value + (5 - step), step)
    return {"loss": value}


OBJECTIVES = {f.__name__: f for f in (quadratic, tradeoff, sleepy, fails_on_b, hangs_on_x0, dies_on_c, reports)}


def main(argv: list[str] | None = None) -> int:
    """One worker: open (or resume) the study and run trials until the study holds --trials."""
    from steelyard.search.runner import run_search
    from steelyard.search.space import SearchSpace
    from steelyard.search.storage import open_storage
    from steelyard.search.study import StudySpec, make_sampler, open_study, parse_objectives

    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--trials", type=int, required=True)
    ap.add_argument("--objective", default="sleepy")
    ap.add_argument("--isolation", default="inline")
    ap.add_argument("--heartbeat", type=int, default=1)
    ap.add_argument("--grace", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--wait-for-workers", type=int, default=1, help="start when this many workers opened the study")
    args = ap.parse_args(argv)
    space = SearchSpace.from_dict(QUADRATIC_SPACE)
    storage = open_storage(args.storage, heartbeat_interval=args.heartbeat, grace_period=args.grace)
    spec = StudySpec(args.study, "synthetic", "sha256:synthetic", parse_objectives("loss:min"), space.to_dict())
    study = open_study(storage, spec, make_sampler("random", space, 1, args.trials, args.seed))
    # A start line, so that "both workers did some of the trials" does not depend on import speed.
    study.set_user_attr(f"ready-{os.getpid()}", True)
    deadline = time.time() + 60
    while sum(k.startswith("ready-") for k in study.user_attrs) < args.wait_for_workers and time.time() < deadline:
        time.sleep(0.05)
    outcome = run_search(study, OBJECTIVES[args.objective], space, args.trials, isolation=args.isolation,
                         progress=False, on_trial=lambda t: print(f"done {t.number}", flush=True))
    print(f"stopped {outcome.stopped} ran {sorted(outcome.ran)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
