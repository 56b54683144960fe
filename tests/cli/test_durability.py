"""Killed or interrupted writers lose nothing: ``kill -9`` and Ctrl-C at known points of writing.

Each test runs ``python -m steelyard`` in a subprocess with ``STEELYARD_TEST_PAUSE_AT=<point>``
(:func:`steelyard.outputs.pause_point`): the command announces ``steelyard: paused at <point>``
on stderr and sleeps there, the test sends the signal, then checks that the output is absent or
complete and loadable, that the original is intact, and that the next run leaves nothing stranded
(no hidden ``.<name>.tmp-*`` / ``.old-*`` siblings). The points: ``write-start`` (temporary folder
made, nothing written), ``write-done`` (temporary folder complete, not yet in place), ``swap``
(about to replace an existing output), ``train-step``, ``trial-start`` and ``store-commit``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from text_toys import reviews_csv, tiny_bert

SRC = Path(__file__).resolve().parents[2] / "src"
TRAIN = ["--max-length", "16", "--batch-size", "8", "--epochs", "1", "--max-steps", "2", "--no-save"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("durability")
    return (tiny_bert(root / "model", layers=2, hidden=16, heads=2, max_positions=64),
            reviews_csv(root / "reviews.csv", 40))


def env(pause: str | None, store: str) -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "STEELYARD_STORE": store, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    out.pop("STEELYARD_TEST_PAUSE_AT", None)
    if pause:
        out["STEELYARD_TEST_PAUSE_AT"] = pause
    return out


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def steelyard(tmp_path: Path, *args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI to the end (no pause)."""
    return subprocess.run([sys.executable, "-m", "steelyard", *map(str, args)], env=env(None, store_url(tmp_path)),
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def interrupt(tmp_path: Path, point: str, sig: int, *args: object, timeout: float = 300) -> tuple[int, str]:
    """Run the CLI until it pauses at ``point``, send ``sig``; returns (exit code, stderr)."""
    log = tmp_path / f"stdout-{point}.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "steelyard", *map(str, args)], stdout=out,
                                stderr=subprocess.PIPE, text=True, env=env(point, store_url(tmp_path)), cwd=tmp_path)
        seen: list[str] = []
        deadline = time.time() + timeout
        assert proc.stderr is not None
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"exited {proc.returncode} before pausing at {point}: {''.join(seen)[-2000:]}")
            seen.append(line)
            if f"steelyard: paused at {point}" in line:
                break
        else:
            proc.kill()
            pytest.fail(f"never paused at {point}")
        proc.send_signal(sig)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    return code, rest


def stranded(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and (".tmp-" in p.name or
                                                                                 ".old-" in p.name))


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def loads(path: Path) -> bool:
    from steelyard.models import InputSpec, LoadConfig, load_model

    handle = load_model(str(path), LoadConfig(inputs=InputSpec(seq_len=8)))
    return handle.module is not None


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def test_compress_killed_while_writing_leaves_old_or_nothing_and_the_next_run_cleans(assets, tmp_path):
    model, _ = assets
    original = digest(model)
    out = tmp_path / "small"
    args = ["compress", model, "--recipe", "quantize:int8-dynamic", "--output", out, "--max-length", "16",
            "--rounds", "1", "--no-save"]
    code, _ = interrupt(tmp_path, "write-start", signal.SIGKILL, *args)
    assert code == -signal.SIGKILL and not out.exists()
    assert stranded(tmp_path)  # what kill -9 leaves ...
    done = steelyard(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not stranded(tmp_path) and loads(out)  # ... the next run cleans
    first = digest(out)
    for point in ("write-done", "swap"):  # --overwrite killed at any point: the old model stays, loadable
        code, _ = interrupt(tmp_path, point, signal.SIGKILL, *args, "--overwrite")
        assert code == -signal.SIGKILL
        assert digest(out) == first and loads(out)
    done = steelyard(tmp_path, *args, "--overwrite")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not stranded(tmp_path) and loads(out)
    assert digest(model) == original


def test_finetune_killed_or_interrupted_saves_all_or_nothing(assets, tmp_path):
    model, data = assets
    original = digest(model)
    out = tmp_path / "tuned"
    args = ["finetune", model, "--data", data, "--output", out, *TRAIN]
    code, err = interrupt(tmp_path, "train-step", signal.SIGINT, *args)
    assert code == 130
    assert one_line(err) == f"interrupted: nothing saved to {out} (the model is written only when training ends)"
    assert not out.exists() and not stranded(tmp_path)
    code, _ = interrupt(tmp_path, "write-start", signal.SIGKILL, *args)
    assert code == -signal.SIGKILL and not out.exists()
    done = steelyard(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not stranded(tmp_path) and loads(out)
    first = digest(out)
    code, err = interrupt(tmp_path, "write-done", signal.SIGINT, *args, "--overwrite")  # Ctrl-C while saving
    assert code == 130 and "still holds the model it held before" in one_line(err)
    assert digest(out) == first and not stranded(tmp_path)
    code, _ = interrupt(tmp_path, "swap", signal.SIGKILL, *args, "--overwrite")
    assert code == -signal.SIGKILL and digest(out) == first and loads(out)
    assert digest(model) == original


def test_distill_killed_while_writing_leaves_nothing_half_written(assets, tmp_path):
    teacher, data = assets
    original = digest(teacher)
    out = tmp_path / "student"
    args = ["distill", "--teacher", teacher, "--student", "layers=1", "--data", data, "--output", out, *TRAIN]
    code, _ = interrupt(tmp_path, "write-done", signal.SIGKILL, *args)
    assert code == -signal.SIGKILL and not out.exists()
    done = steelyard(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not stranded(tmp_path) and loads(out)
    assert digest(teacher) == original


def test_a_store_write_killed_before_commit_loses_no_row_and_adds_none(assets, tmp_path):
    from steelyard.store import open_store

    model, _ = assets
    args = ["profile", model, "--seq-len", "8", "--no-measure"]
    assert steelyard(tmp_path, *args).returncode == 0
    rows = open_store(store_url(tmp_path)).count()
    code, _ = interrupt(tmp_path, "store-commit", signal.SIGKILL, *args)
    assert code == -signal.SIGKILL
    assert open_store(store_url(tmp_path)).count() == rows  # the half-written run is not there
    assert steelyard(tmp_path, *args).returncode == 0
    assert open_store(store_url(tmp_path)).count() == rows + 1  # and the store still takes writes


def test_optimize_interrupted_as_a_trial_starts_resumes_with_every_trial_once(assets, tmp_path):
    import optuna

    model, data = assets
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["optimize", model, "--data", data, "--trials", "2", "--max-drop", "100", "--recovery-steps", "1",
            "--storage", storage, "--study", "s", "--isolation", "inline", "--no-final", "--no-save",
            "--batch-size", "8", "--max-length", "16", "--rounds", "1", "--no-progress"]
    code, err = interrupt(tmp_path, "trial-start", signal.SIGINT, *args)
    assert code == 130
    line = one_line(err)
    assert line.startswith("interrupted: the 0 completed trial(s) of study s are kept") and "resume" in line
    study = optuna.load_study(study_name="s", storage=storage)
    states = {t.number: t.state.name for t in study.trials}
    assert states[0] == "WAITING" and "RUNNING" not in states.values()  # trial 0 is back in the queue, not lost
    done = steelyard(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = optuna.load_study(study_name="s", storage=storage).trials
    finished = [t.number for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    assert finished == [0, 1]  # exactly the 2 trials asked for: none lost, none run twice
    assert all(t.state.name == "WAITING" for t in trials if t.number not in finished)
