"""The runs store from the command line: names and tags, delete, provenance, readable models, reproduce
commands for every kind, and read-only commands that leave the file system as it was."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import typer

from steelyard.cli.main import app, run
from tiny_configs import GPT2


def sy(store: str, *args: object) -> int:
    return run(["--store", store, *map(str, args)])


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'runs.db'}"


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    folder = tmp_path / "deep" / "tmpab12cd" / "tiny-gpt2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(GPT2))
    return folder


PROFILE = ("profile", "--config-only", "--seq-len", "16", "--hardware", "local")


def test_names_and_tags_are_recorded_listed_filtered_and_shown(store, tiny_folder, capsys):
    assert sy(store, *PROFILE[:1], tiny_folder, *PROFILE[1:], "--name", "tiny baseline", "--tag", "gpt2",
              "--tag", "baseline") == 0
    assert sy(store, "estimate", "gpt2", "--tokens", "1M", "--seq-len", "32", "--hardware", "t4", "--tag",
              "gpt2") == 0
    capsys.readouterr()
    assert sy(store, "runs", "list", "--json", "-") == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["id"], r["name"], r["tags"]) for r in rows] == [(2, None, ["gpt2"]),
                                                               (1, "tiny baseline", ["baseline", "gpt2"])]
    assert rows[1]["model"] == str(tiny_folder) and rows[1]["model_label"] == "tiny-gpt2"
    assert sy(store, "runs", "list", "--tag", "baseline", "--json", "-") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["runs"]] == [1]
    assert sy(store, "runs", "list", "--tag", "gpt2", "--tag", "baseline", "--json", "-") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["runs"]] == [1]
    assert sy(store, "runs", "list") == 0
    table = capsys.readouterr().out
    assert "tiny baseline" in table and "tiny-gpt2" in table and "tmpab12cd" not in table  # a name, not a path
    assert sy(store, "runs", "list", "--tag", "nothing") == 0
    assert "no runs tagged nothing" in capsys.readouterr().out
    assert sy(store, "runs", "show", "1", "--brief") == 0
    shown = capsys.readouterr().out
    assert "tiny baseline" in shown and "tags baseline, gpt2" in shown
    assert "Provenance" in shown and "sha256 of the config" in shown and "steelyard" in shown


def test_a_bad_name_or_tag_is_refused_before_any_work(store, capsys):
    assert sy(store, "profile", "gpt2", "--config-only", "--tag", "a,b") == 2
    assert "--tag must be" in capsys.readouterr().err
    assert not Path(store.removeprefix("sqlite:///")).exists()


def test_every_run_carries_its_provenance(store, tiny_folder, capsys):
    import steelyard
    from steelyard.store import open_store

    assert sy(store, *PROFILE[:1], tiny_folder, *PROFILE[1:]) == 0
    capsys.readouterr()
    prov = open_store(store, read_only=True).get_run(1).provenance
    assert prov["models"][0]["source"] == str(tiny_folder) and prov["models"][0]["kind"] == "config-sha256"
    assert prov["steelyard"] == steelyard.__version__ and "git" in prov and prov["data"] is None
    assert sy(store, "runs", "show", "1", "--json", "-") == 0
    assert json.loads(capsys.readouterr().out)["provenance"] == prov


def test_delete_by_id_and_tag_asks_first_and_refuses_without_a_terminal(store, capsys):
    for tag in ("old", "old", "keep"):
        assert sy(store, "estimate", "gpt2", "--tokens", "1M", "--seq-len", "32", "--hardware", "t4",
                  "--tag", tag) == 0
    capsys.readouterr()
    assert sy(store, "runs", "delete", "1") == 2  # pytest's stdin is no terminal
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to delete 1 run(s)") and "--yes" in err and "\n" not in err
    assert sy(store, "runs", "delete", "--tag", "old", "--yes") == 0
    assert "deleted 2 run(s) (1, 2)" in capsys.readouterr().out
    assert sy(store, "runs", "list", "--json", "-") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["runs"]] == [3]
    assert sy(store, "runs", "delete", "9", "--yes") == 2
    assert "no run with id 9" in capsys.readouterr().err
    assert sy(store, "runs", "delete") == 2
    assert "say which runs to delete" in capsys.readouterr().err


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size if p.is_file() else 0,
                                       p.stat().st_mtime_ns if p.is_file() else 0) for p in root.rglob("*")}


@pytest.fixture
def bare_home(tmp_path, monkeypatch) -> Path:
    """A user with no store yet: HOME and the working directory in tmp, no $STEELYARD_STORE, no XDG_DATA_HOME."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("STEELYARD_STORE", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.chdir(cwd)
    return tmp_path


def test_read_only_commands_without_a_store_create_nothing(bare_home, capsys):
    before = snapshot(bare_home)
    assert run(["runs", "list"]) == 0
    assert "no runs yet: no results store at" in capsys.readouterr().out
    missing = bare_home / "nowhere" / "store.db"
    for args, code in ((["runs", "list"], 2), (["runs", "show", "1"], 2), (["runs", "diff", "1", "2"], 2),
                       (["runs", "export"], 2), (["study", "list"], 2), (["study", "show", "s"], 2),
                       (["report", "1", "--html", "r.html"], 2)):
        assert run(["--store", f"sqlite:///{missing}", *args]) == code, args
        err = capsys.readouterr().err.strip()
        assert err.startswith(("error: no results store at", "error: no study storage at")) and "\n" not in err
    for args in (["runs", "show", "1"], ["study", "list"]):
        assert run(args) == 2
        capsys.readouterr()
    assert snapshot(bare_home) == before


def test_read_only_commands_on_a_store_leave_it_unchanged(store, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sy(store, "estimate", "gpt2", "--tokens", "1M", "--seq-len", "32", "--hardware", "t4") == 0
    assert sy(store, "profile", "gpt2", "--config-only", "--seq-len", "16", "--hardware", "local") == 0
    import gc

    gc.collect()  # the writers' connections close, as when their processes end: SQLite folds its WAL back in
    capsys.readouterr()
    before = snapshot(tmp_path)
    for args in (["runs", "list"], ["runs", "list", "--tag", "x"], ["runs", "show", "1"], ["runs", "diff", "1", "2"],
                 ["runs", "export", "--format", "json"]):
        assert sy(store, *args) == 0, args
    assert snapshot(tmp_path) == before


def test_the_reproduce_command_reruns_the_same_configuration(store, tiny_folder, tmp_path, capsys, monkeypatch):
    from steelyard.store import open_store

    monkeypatch.chdir(tiny_folder.parent)
    assert sy(store, "profile", "tiny-gpt2", "--config-only", "--seq-len", "16", "--hardware", "local,t4",
              "--batch-size", "2", "--json", tmp_path / "p.json", "--name", "n") == 0
    assert sy(store, "estimate", "gpt2", "--tokens", "2M", "--seq-len", "32", "--hardware", "t4", "--utilization",
              "0.3") == 0
    capsys.readouterr()
    assert sy(store, "runs", "show", "1", "--brief") == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("reproduce: "))
    command = line.removeprefix("reproduce: ")
    assert command == (f"steelyard profile {tiny_folder} --batch-size 2 --seq-len 16 --config-only --hardware "
                       "local,t4")  # the folder absolute; no report file, no name
    monkeypatch.chdir(tmp_path)  # it runs from anywhere
    reader = open_store(store, read_only=True)
    for run_id in (1, 2):
        first = reader.get_run(run_id)
        again = shlex.split(first.config["command"])
        assert again[0] == "steelyard" and sy(store, *again[1:]) == 0
        rerun = open_store(store, read_only=True).find_runs(limit=1)[0]
        assert rerun.kind == first.kind and rerun.config == first.config


def test_every_run_kind_has_a_reproduce_command():
    """Each kind the store records comes from a command that captures its invocation (--name / --tag
    and the command line come from one wrapper), and the invocation parses back to the same values."""
    from steelyard.cli.run_options import PARAMS, invocation
    from steelyard.reporting.commands import RUN_KINDS
    from steelyard.store import record

    root = typer.main.get_command(app)
    recorded = set(RUN_KINDS)
    source = Path(record.__file__).read_text()
    for kind in recorded:
        assert f'"{kind}"' in source, kind
    samples = {
        "profile": ["m", "--seq-len", "16", "--config-only", "--input-shape", "1,3", "--input-shape", "2,4"],
        "estimate": ["m", "--tokens", "1M", "--hardware", "t4", "--utilization", "0.3"],
        "evaluate": ["m", "--data", "bbc-news", "--split", "validation", "--max-examples", "10"],
        "finetune": ["m", "--data", "bbc-news", "--output", "out", "--epochs", "2", "--lr", "0.001",
                     "--freeze-encoder"],
        "distill": ["--teacher", "t", "--student", "layers=2", "--output", "o", "--data", "bbc-news", "--no-cache"],
        "compare-optimizers": ["m", "--data", "bbc-news", "--target-metric", "accuracy=0.9", "--optimizers", "sgd"],
        "data-needs": ["m", "--data", "bbc-news", "--target-metric", "accuracy=0.9", "--full"],
        "compare": ["a", "b", "--config-only", "--max-latency", "50ms"],
        "compress": ["m", "--recipe", "quantize:int8", "--data", "bbc-news"],
        "optimize": ["m", "--data", "bbc-news", "--trials", "3"],
        "search": ["m", "--data", "bbc-news", "--trials", "3", "--space", "space.yaml",
                   "--objectives", "accuracy:max,latency:min"],
    }
    assert set(RUN_KINDS.values()) == set(samples)
    parent = root.make_context("steelyard", ["runs"], resilient_parsing=True)
    for name, args in samples.items():
        command = root.commands[name]
        assert set(PARAMS) <= {p.name for p in command.params}, name
        ctx = command.make_context(name, [*args, "--name", "x", "--tag", "t"], parent=parent)
        line = invocation(ctx, ctx.params)
        words = shlex.split(line)
        assert words[:2] == ["steelyard", name] and "--name" not in words and "--tag" not in words, line
        back = command.make_context(name, words[2:], parent=parent).params
        assert {k: v for k, v in back.items() if k not in PARAMS} == \
            {k: v for k, v in ctx.params.items() if k not in PARAMS}, name


def test_runs_stored_without_a_command_are_rebuilt_from_their_config():
    from steelyard.data.options import DataOptions
    from steelyard.models.loading import LoadConfig
    from steelyard.reporting.commands import reproduce_command
    from steelyard.serialize import to_dict
    from steelyard.store.record import _config_dict
    from steelyard.store.runs import RunRecord
    from steelyard.training.config import FinetuneConfig

    def record(kind, config, payload):
        return RunRecord(1, kind, "org/model", None, "ok", config, {}, payload, {})

    tune = record("finetune", _config_dict(FinetuneConfig(epochs=2, freeze_encoder=True), DataOptions("bbc-news")),
                  {"result": {"output": "/models/out"}})
    assert reproduce_command(tune) == ("steelyard finetune org/model --output /models/out --data bbc-news "
                                       "--clean --epochs 2 --lr 0.01 --freeze-encoder")
    est = record("estimate", {"LoadConfig": to_dict(LoadConfig())},
                 {"tokens": 2e9, "method": "6ND", "rows": [{"hardware": "t4"}, {"hardware": "a100-80gb"}]})
    assert reproduce_command(est) == ("steelyard estimate org/model --tokens 2B --hardware t4,a100-80gb "
                                      "--method 6ND --seq-len 128")
    assert reproduce_command(record("evaluate", {"command": "steelyard evaluate m --data d"}, {})) == \
        "steelyard evaluate m --data d"
