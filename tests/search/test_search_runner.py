"""The search machinery on synthetic objectives with known optima: finding them, failures, time limits,
pruning, resume after Ctrl-C and after a killed worker, two workers on one study, and the bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

import search_synthetic as synth
from steelyard.errors import ConfigError, StoreError
from steelyard.reporting.search_view import answer_text, default_status
from steelyard.reporting.study_view import study_part
from steelyard.search.runner import run_search
from steelyard.search.space import SearchSpace
from steelyard.search.storage import default_storage_url, open_storage
from steelyard.search.study import StudySpec, load_study, make_pruner, make_sampler, open_study, parse_objectives
from steelyard.search.summary import summarize

WORKER = Path(__file__).parents[1] / "search_synthetic.py"
QUAD = SearchSpace.from_dict(synth.QUADRATIC_SPACE)


def spec_for(name: str, objectives: str = "loss:min", space: SearchSpace = QUAD, model: str = "synthetic",
             selection: dict | None = None, kind: str = "search") -> StudySpec:
    return StudySpec(name, model, f"sha256:{model}", parse_objectives(objectives), space.to_dict(), "synthetic-data",
                     kind, selection or {})


def new_study(tmp_path: Path, name: str, sampler: str = "tpe", **kw):
    spec = spec_for(name, **kw)
    space = SearchSpace.from_dict(spec.space)
    storage = open_storage(str(tmp_path / "studies.db"), heartbeat_interval=1, grace_period=3)
    sampler_obj = make_sampler(sampler, space, len(spec.objectives), 30, seed=0)
    return open_study(storage, spec, sampler_obj, make_pruner(len(spec.objectives))), spec, storage


def states(study) -> dict[int, str]:
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


def test_tiny_search_finds_the_known_best_point(tmp_path):
    study, spec, _ = new_study(tmp_path, "quad")
    outcome = run_search(study, synth.quadratic, QUAD, 30, isolation="inline", progress=False, skip_repeats=True)
    assert outcome.stopped == "budget" and len(outcome.ran) == 30 and outcome.used == 30
    summary = summarize(study, spec)
    # TPE proposes some points twice in this 75-point space; a repeat is not run again
    assert summary.counts["complete"] + summary.counts.get("pruned", 0) == 30
    done = [r for r in summary.rows if r.state == "complete"]
    assert len({tuple(sorted(r.params.items())) for r in done}) == len(done)
    for r in summary.rows:
        if r.state == "pruned":
            twin = summary.row(int(r.reason.split("#")[1].split()[0]))
            assert "same parameters as trial" in r.reason and twin.params == r.params and twin.number < r.number
    best = summary.best
    assert best.params == {"x": 3, "y": "b", "z": 0.5} and best.values["loss"] == 0.0
    assert best.metrics["x_seen"] == 3.0  # extra numbers are kept with the trial


def test_multi_objective_front_and_cheapest_within_the_budget(tmp_path):
    space = SearchSpace.from_dict(synth.TRADEOFF_SPACE)
    selection = {"primary": "cost", "constraints": [["drop", "max", 1.0]]}
    study, spec, _ = new_study(tmp_path, "trade", sampler="grid", objectives="accuracy:max,cost:min", space=space,
                               selection=selection, kind="optimize")
    run_search(study, synth.tradeoff, space, space.size(), isolation="inline", progress=False)
    summary = summarize(study, spec)
    rows = {(r.params["depth"], r.params["int8"]): r for r in summary.rows}
    assert len(rows) == 8  # the grid covered every point once
    assert rows[(0.25, True)].recipe == "prune:layers,amount=0.25; quantize:true"
    assert rows[(0.0, False)].recipe == ""  # every step off
    best = summary.best
    assert (best.params["depth"], best.params["int8"]) == (0.25, True) and best.values["cost"] == 0.375
    # the front: a point is on it unless another is at least as accurate and as cheap
    front = {(summary.row(n).params["depth"], summary.row(n).params["int8"]) for n in summary.front}
    assert front == {(0.0, False), (0.25, False), (0.0, True), (0.25, True), (0.5, True), (0.75, True)}
    assert default_status(study.get_trials(), study) == "best accuracy 95.00% · front 6"
    # a budget nobody meets: no answer, and the nearest points named with how far they miss
    tight = spec_for("trade", "accuracy:max,cost:min", space, selection={"primary": "cost",
                                                                           "constraints": [["drop", "max", -1.0]]})
    none = summarize(study, tight)
    assert none.best is None and none.selection.nearest[0] == rows[(0.0, False)].number
    assert none.selection.recommendation.chosen is None
    assert "No candidate meets every constraint" in answer_text(none)
    # stored as data, worded the same by the report; a study stored with the old text keeps its text
    stored = json.loads(json.dumps(none.to_dict(), allow_nan=False))
    assert study_part(stored, 1).sections[0].paragraphs[0] == answer_text(none)
    old = {k: v for k, v in stored.items() if k != "recommendation"} | {"explanation": "old words"}
    assert study_part(old, 1).sections[0].paragraphs[0] == "old words"


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    study, spec, _ = new_study(tmp_path, "fails", sampler="random")
    outcome = run_search(study, synth.fails_on_b, QUAD, 12, isolation="inline", progress=False)
    failed = [t for t in study.get_trials() if t.state.name == "FAIL"]
    assert failed and all(t.params["y"] == "b" for t in failed)
    assert all(t.user_attrs["error"] == "RuntimeError: y=b breaks this model" for t in failed)
    assert "breaks this model" in failed[0].user_attrs["traceback"]
    assert len(outcome.ran) == 12 and len(study.get_trials()) == 12  # failures count, the search went on
    reasons = {r.number: r.reason for r in summarize(study, spec).rows}
    assert reasons[failed[0].number] == "RuntimeError: y=b breaks this model"


def small(x: list, y: list) -> SearchSpace:
    """A grid small enough that every point is visited."""
    return SearchSpace.from_dict({"params": {"x": x, "y": y, "z": [0.5]}})


def test_trial_time_limit_kills_the_trial_process_and_the_search_goes_on(tmp_path):
    space = small([0, 1, 2, 3], ["b"])
    study, _, _ = new_study(tmp_path, "slow", sampler="grid", space=space)
    started = time.time()
    run_search(study, synth.hangs_on_x0, space, 4, trial_timeout_s=1.5, isolation="process", progress=False)
    elapsed = time.time() - started
    trials = study.get_trials()
    hung = [t for t in trials if t.params["x"] == 0]
    assert hung and all(t.state.name == "FAIL" for t in hung)
    assert all("passed the trial time limit of 1.5 s" in t.user_attrs["error"] for t in hung)
    assert all(1.4 < t.user_attrs["duration_s"] < 5 for t in hung)
    assert any(t.state.name == "COMPLETE" for t in trials) and len(trials) == 4
    assert elapsed < 60  # the hour-long sleep was cut short


def test_the_search_time_limit_puts_the_running_trial_back_unrun(tmp_path):
    space = small([0], ["b"])
    study, _, _ = new_study(tmp_path, "deadline", sampler="grid", space=space)
    started = time.time()
    outcome = run_search(study, synth.hangs_on_x0, space, 3, timeout_s=2.0, isolation="process", progress=False)
    assert outcome.stopped == "timeout" and outcome.ran == {} and time.time() - started < 30
    (trial,) = study.get_trials()
    assert trial.state.name == "WAITING" and trial.params == {"x": 0, "y": "b", "z": 0.5}


def test_a_trial_that_kills_its_process_is_failed_and_the_next_runs(tmp_path):
    space = small([1, 3], ["a", "c"])
    study, _, _ = new_study(tmp_path, "dies", sampler="grid", space=space)
    run_search(study, synth.dies_on_c, space, 4, isolation="process", progress=False)
    trials = study.get_trials()
    dead = [t for t in trials if t.params["y"] == "c"]
    assert dead and all("the trial process died (SIGKILL" in t.user_attrs["error"] for t in dead)
    assert [t for t in trials if t.params["y"] != "c" and t.state.name == "COMPLETE"]


def test_median_pruner_stops_bad_curves_of_a_single_objective(tmp_path):
    study, spec, _ = new_study(tmp_path, "prune", sampler="random")
    run_search(study, synth.reports, QUAD, 20, isolation="inline", progress=False)
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert pruned and all("below the median" in t.user_attrs["pruned"] for t in pruned)
    assert all(len(t.intermediate_values) < 5 for t in pruned)
    assert summarize(study, spec).counts["pruned"] == len(pruned)


def test_multi_objective_trials_can_prune_themselves(tmp_path):
    space = SearchSpace.from_dict(synth.TRADEOFF_SPACE)

    def objective(ctx):
        if ctx.history and ctx.params["depth"] == 0.0:
            ctx.prune("already have something cheaper")
        return synth.tradeoff(ctx)

    study, spec, _ = new_study(tmp_path, "mo", sampler="grid", objectives="accuracy:max,cost:min", space=space)
    run_search(study, objective, space, 8, isolation="inline", progress=False)
    reasons = [r.reason for r in summarize(study, spec).rows if r.state == "pruned"]
    assert reasons and all(r == "pruned: already have something cheaper" for r in reasons)


def test_missing_or_bad_objective_values_fail_the_trial(tmp_path):
    study, _, _ = new_study(tmp_path, "bad", sampler="random")
    run_search(study, lambda ctx: {"other": 1.0}, QUAD, 1, isolation="inline", progress=False)
    run_search(study, lambda ctx: {"loss": float("nan")}, QUAD, 2, isolation="inline", progress=False)
    errors = [t.user_attrs["error"] for t in study.get_trials()]
    assert errors == ["the objective returned no loss (it returned other)",
                      "the objective returned a value that is not finite: loss=nan"]


def test_unpicklable_objective_needs_inline(tmp_path):
    study, _, _ = new_study(tmp_path, "lambda")
    with pytest.raises(ConfigError, match="isolation='inline'"):
        run_search(study, lambda ctx: {"loss": 0.0}, QUAD, 1, isolation="process")


def test_study_of_another_model_is_refused_and_left_intact(tmp_path):
    study, _, storage = new_study(tmp_path, "mine", sampler="random")
    run_search(study, synth.quadratic, QUAD, 3, isolation="inline", progress=False)
    before = [(t.number, t.state, t.params) for t in study.get_trials()]
    with pytest.raises(ConfigError, match="study 'mine' belongs to model synthetic"):
        open_study(storage, spec_for("mine", model="other-model"))
    with pytest.raises(ConfigError, match="optimizes loss:min, not loss:max"):
        open_study(storage, spec_for("mine", objectives="loss:max"))
    again, _ = load_study(storage, "mine")
    assert [(t.number, t.state, t.params) for t in again.get_trials()] == before
    assert again.user_attrs["model"] == "synthetic"
    with pytest.raises(ConfigError, match="no study named 'nope'; studies there: mine"):
        load_study(storage, "nope")


def test_unreachable_or_bad_storage_is_a_one_line_store_error(tmp_path):
    cases = [("postgresql://user:secret@127.0.0.1:1/db", ["127.0.0.1", "user:***@"]),
             ("mysql://u@127.0.0.1:1/db", ["missing database driver"]),
             ("nosuchdb://x", ["cannot open the study storage"])]
    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    cases.append((str(tmp_path / "garbage.db"), ["file is not a database"]))
    for url, words in cases:
        with pytest.raises(StoreError) as err:
            open_storage(url)
        text = str(err.value)
        assert "\n" not in text and "secret" not in text
        for word in words:
            assert word in text, text


def test_default_storage_sits_next_to_the_results_store(tmp_path, monkeypatch):
    monkeypatch.setenv("STEELYARD_STORE", f"sqlite:///{tmp_path / 'results' / 'steelyard.db'}")
    assert default_storage_url() == f"sqlite:///{tmp_path / 'results' / 'studies.db'}"
    assert default_storage_url("postgresql://h/db") == "postgresql://h/db"


# -- several processes -----------------------------------------------------------------------------
def worker(url: str, study: str, trials: int, *extra: str, sleep: float = 0.05, **popen) -> subprocess.Popen:
    env = {**os.environ, "SYNTH_SLEEP": str(sleep), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(WORKER), "--storage", url, "--study", study, "--trials",
                             str(trials), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def assert_exactly(url: str, name: str, n: int) -> list:
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    finished = [t for t in trials if t.state.is_finished()]
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert sorted(t.number for t in finished) == list(range(n))
    # anything left is an unrun trial put back in the queue by the worker that lost the race
    assert all(t.state.name == "WAITING" and not t.params for t in trials if not t.state.is_finished())
    return finished


def test_two_worker_processes_share_one_study_without_duplicates(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [worker(url, "shared", 16, "--wait-for-workers", "2") for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    finished = assert_exactly(url, "shared", 16)
    assert all(t.state.name == "COMPLETE" for t in finished)
    ran = [set(map(int, out.split("ran [")[1].split("]")[0].replace(",", " ").split() or [])) for out in outs]
    assert not ran[0] & ran[1] and ran[0] | ran[1] == set(range(16))
    assert ran[0] and ran[1]  # both did work


def test_ctrl_c_keeps_finished_trials_and_the_same_command_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'int.db'}"
    proc = worker(url, "int", 6, "--isolation", "process", sleep=2.0, start_new_session=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("done 1"):
            time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
            break
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0 and "stopped interrupted" in out, [*seen, out]
    study = optuna.load_study(study_name="int", storage=url)
    trials = study.get_trials()
    done = {t.number: t.params for t in trials if t.state.name == "COMPLETE"}
    assert set(done) == {0, 1}
    queued = [t for t in trials if t.state.name == "WAITING"]
    assert len(queued) == 1 and queued[0].params  # the interrupted candidate, parameters kept
    resumed = worker(url, "int", 6, sleep=0.01)
    assert resumed.wait(timeout=120) == 0
    finished = assert_exactly(url, "int", 6)
    after = {t.number: t.params for t in finished}
    assert {k: after[k] for k in done} == done  # nothing finished was lost or redone
    assert after[queued[0].number] == queued[0].params  # the interrupted candidate was run as it was


def test_a_killed_worker_trial_is_failed_and_run_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    proc = worker(url, "kill", 5, sleep=1.0)
    for line in proc.stdout:
        if line.startswith("done 1"):
            time.sleep(0.3)
            proc.kill()  # no Ctrl-C handler runs: the trial stays RUNNING with an old heartbeat
            break
    proc.wait(timeout=30)
    stuck = [t for t in optuna.load_study(study_name="kill", storage=url).get_trials() if t.state.name == "RUNNING"]
    assert len(stuck) == 1
    time.sleep(3.5)  # past the grace period of 3 s
    assert worker(url, "kill", 5, sleep=0.01).wait(timeout=120) == 0
    trials = optuna.load_study(study_name="kill", storage=url).get_trials()
    dead = next(t for t in trials if t.number == stuck[0].number)
    assert dead.state.name == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == stuck[0].params
    # the budget counts the re-run, not the dead trial: 5 trials that use it, 6 in all
    assert sum(t.state.name == "COMPLETE" for t in trials) == 5 and len(trials) == 6
    spec = spec_for("kill")
    reasons = {r.number: r.reason for r in summarize(optuna.load_study(study_name="kill", storage=url), spec).rows}
    assert reasons[dead.number] == (f"its worker stopped sending heartbeats (killed or lost); re-run as trial "
                                    f"{retry[0].number}")
