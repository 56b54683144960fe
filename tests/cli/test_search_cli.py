"""`steelyard optimize`, `search` and `study show` end to end on a tiny BERT, and their bad input."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from cli_helpers import one_line_error, steelyard
from steelyard.search import recipe_objective
from steelyard.store import open_store
from text_toys import reviews_csv, tiny_bert

FAST = ["--batch-size", "8", "--max-length", "32", "--rounds", "2", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("search-cli")
    models = [tiny_bert(root / name, layers=3, hidden=32, heads=4, max_positions=64, seed=seed)
              for name, seed in (("model", 0), ("other", 1))]
    return models[0], models[1], reviews_csv(root / "reviews.csv", 60)


def studies_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_optimize_end_to_end_saves_the_winner_and_resumes(tiny, tmp_path, capsys):
    model, _, data = tiny
    out, js, show = tmp_path / "winner", tmp_path / "opt.json", tmp_path / "show.json"
    storage = studies_db(tmp_path)
    args = ["optimize", model, "--data", data, "--max-drop", "100", "--trials", "4", "--recovery-steps", "2",
            "--storage", storage, "--study", "tiny-opt", "--sampler-seed", "0", *FAST]
    assert steelyard(*args, "--output", out, "--json", js) == 0
    text = capsys.readouterr().out
    for words in ("new study tiny-opt", "Pareto front", "best (lowest latency with drop ≤ 100)",
                  "measuring it on the test split", "accuracy (test, 95% CI)", "winning model saved to"):
        assert words in text, words
    d = json.loads(js.read_text())
    assert sum(d["counts"].values()) == 4 and d["best"] is not None
    # the study starts from the common recipes: int8 alone first
    first = next(t for t in d["trials"] if t["number"] == 0)
    assert first["recipe"] == "quantize:int8-dynamic" and first["state"] == "complete"
    assert first["metrics"]["size"] < first["metrics"]["params"] * 4  # int8 weights: under 4 bytes a parameter
    best = next(t for t in d["trials"] if t["number"] == d["best"])
    assert d["final"]["recipe"] == best["recipe"] and d["final"]["result"]["eval_split"] == "test"
    # the answer's drop and speedup carry their tests: the paired p-value and the interval over the rounds
    assert 0 <= best["metrics"]["drop_p"] <= 1 and best["metrics"]["speedup_low"] <= best["metrics"]["speedup_high"]
    assert "paired test on the same examples" in text and "accuracy" in d["final"]["result"]["changes"]
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    kinds = {r.kind: r for r in open_store().list_runs()}
    assert kinds["optimize"].metrics["best.trial"][0] == d["best"] and kinds["optimize"].status == "ok"
    assert kinds["optimize"].config["study"] == "tiny-opt"
    assert kinds["compression"].payload["recipe"]  # the winner, measured on test, as a compression run
    html = tmp_path / "study.html"
    assert steelyard("report", str(kinds["optimize"].id), str(kinds["compression"].id), "--html", html) == 0
    page = html.read_text()
    assert "Optimize: " in page and "Pareto front" in page and "Compression: " in page and "#0" in page

    before = {t.number: (t.params, t.values) for t in optuna.load_study(study_name="tiny-opt",
                                                                         storage=storage).get_trials()}
    # the same command with a larger budget resumes: the first four trials stay as they were
    # (in this process this time: how a trial runs is not part of the study)
    assert steelyard(*[a if a != "4" else "5" for a in map(str, args)], "--no-final", "--no-save", "--isolation",
                     "inline") == 0
    assert "resuming study tiny-opt: 4 of 5 trials already there" in capsys.readouterr().out
    after = optuna.load_study(study_name="tiny-opt", storage=storage).get_trials()
    assert len([t for t in after if t.state.is_finished()]) == 5
    assert {t.number: (t.params, t.values) for t in after if t.number in before} == before

    assert steelyard("study", "show", "tiny-opt", "--storage", storage, "--json", show) == 0
    shown = capsys.readouterr().out
    assert "trials" in shown and "★" in shown
    s = json.loads(show.read_text())
    assert s["kind"] == "optimize" and s["model"] == str(model) and len(s["trials"]) == 5
    assert s["objectives"] == [{"name": "accuracy", "direction": "max"}, {"name": "latency", "direction": "min"}]
    assert steelyard("study", "list", "--storage", storage) == 0
    assert "tiny-opt" in capsys.readouterr().out


def test_search_with_a_yaml_space(tiny, tmp_path, capsys):
    model, _, data = tiny
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  ffn: [0.0, 0.5]\n  precision: [none, int8-dynamic]\n"
                     "recipe: 'prune:structured,amount={ffn}; quantize:{precision}'\n")
    js = tmp_path / "s.json"
    assert steelyard("search", model, "--data", data, "--space", space, "--objectives", "accuracy:max,size:min",
                     "--sampler", "grid", "--trials", "10", "--storage", studies_db(tmp_path), "--isolation",
                     "inline", "--json", js, *FAST) == 0
    text = capsys.readouterr().out
    assert "--trials 10 lowered to that" in text and "build it (measured on the test split): steelyard compress" in text
    d = json.loads(js.read_text())
    recipes = {t["recipe"]: t for t in d["trials"]}
    assert set(recipes) == {"", "quantize:int8-dynamic", "prune:structured,amount=0.5",
                            "prune:structured,amount=0.5; quantize:int8-dynamic"}
    assert recipes[""]["state"] == "pruned" and "original model itself" in recipes[""]["reason"]
    smallest = recipes["prune:structured,amount=0.5; quantize:int8-dynamic"]
    assert smallest["number"] in d["front"]
    assert smallest["metrics"]["size"] < recipes["quantize:int8-dynamic"]["metrics"]["size"]
    assert d["study"] == "search-model-reviews.csv-space"
    assert open_store().list_runs(kind="search")[0].metrics["trials.complete"][0] == 3

    # the same study under a size budget: no new trial, the answer is the most accurate int8 point
    limit = recipes["quantize:int8-dynamic"]["metrics"]["size"]
    base = ["search", model, "--data", data, "--space", space, "--objectives", "accuracy:max,size:min", "--sampler",
            "grid", "--trials", "4", "--storage", studies_db(tmp_path), "--isolation", "inline", *FAST]
    assert steelyard(*base, "--budget", f"size<={limit}", "--json", js) == 0
    within = json.loads(js.read_text())
    int8 = [t for t in within["trials"] if t["metrics"].get("size", 1e99) <= limit]
    assert within["best"] in [t["number"] for t in int8]
    assert max(t["values"]["accuracy"] for t in int8) == next(
        t["values"]["accuracy"] for t in within["trials"] if t["number"] == within["best"])
    capsys.readouterr()
    assert steelyard(*base, "--budget", "size<=1k") == 2
    one_line_error(capsys, "no trial meets --budget size<=1k")


@pytest.fixture
def fake_trials(monkeypatch):
    """Trials that return fixed numbers without compressing (in-process: --isolation inline)."""
    def fake(self, ctx):
        if not ctx.recipe:
            ctx.prune("original")
        return {"accuracy": 0.5, "drop": 5.0 + len(ctx.recipe) / 1000, "latency": 1 / (1 + len(ctx.recipe) / 100)}

    monkeypatch.setattr(recipe_objective.RecipeObjective, "__call__", fake)


def test_a_budget_nobody_meets_says_so_and_exits_2(tiny, tmp_path, capsys, fake_trials):
    model, _, data = tiny
    out = tmp_path / "never"
    code = steelyard("optimize", model, "--data", data, "--max-drop", "1", "--trials", "3", "--storage",
                     studies_db(tmp_path), "--isolation", "inline", "--output", out, *FAST)
    assert code == 2
    err = one_line_error(capsys, "no trial is within --max-drop 1 points", "closest: trial 0 drops +5.02 pt",
                         "--max-drop")
    assert "recorded as run" in err
    assert not out.exists()
    run_row = open_store().list_runs(kind="optimize")[0]
    assert run_row.status == "no-answer" and run_row.metrics["trials.complete"][0] == 3


def test_a_study_of_another_model_is_refused_and_left_intact(tiny, tmp_path, capsys, fake_trials):
    model, other, data = tiny
    storage = studies_db(tmp_path)
    common = ["--data", data, "--max-drop", "50", "--trials", "2", "--storage", storage, "--study", "mine",
              "--isolation", "inline", "--no-final", "--no-save", *FAST]
    assert steelyard("optimize", model, *common) == 0
    capsys.readouterr()
    before = [(t.number, t.state, t.params) for t in optuna.load_study(study_name="mine", storage=storage).trials]
    assert steelyard("optimize", other, *common) == 2
    one_line_error(capsys, "study 'mine' belongs to model", str(model), "pick another --study name")
    assert steelyard("optimize", model, *common[:-len(FAST)], "--batch-size", "8", "--max-length", "16", "--rounds",
                     "2") == 2
    one_line_error(capsys, "measured with other settings", "max_length 32 (now 16)")
    after = [(t.number, t.state, t.params) for t in optuna.load_study(study_name="mine", storage=storage).trials]
    assert after == before


@pytest.mark.parametrize("args, words", [
    (["--space", "{empty}", "--objectives", "accuracy:max"], ["is empty"]),
    (["--space", "{backwards}", "--objectives", "accuracy:max"], ["'ffn'", "low 0.5 is above high 0.1"]),
    (["--space", "{nosuchstep}", "--objectives", "accuracy:max"], ["recipe template gives", "unknown recipe step"]),
    (["--space", "{good}", "--objectives", "accuracy:max,speed:max"], ["unknown objective 'speed'"]),
    (["--space", "{good}", "--objectives", "accuracy"], ["accuracy:max or accuracy:min"]),
    (["--space", "{good}", "--objectives", "accuracy:max", "--sampler", "cmaes"], ["unknown sampler 'cmaes'"]),
    (["--space", "{good}", "--objectives", "accuracy:max", "--timeout", "30x"], ["--timeout", "unknown time unit"]),
    (["--space", "{good}", "--objectives", "accuracy:max", "--storage", "postgresql://u:pw@127.0.0.1:1/db"],
     ["cannot open the study storage", "127.0.0.1", "u:***@"]),
])
def test_search_bad_input_is_one_line_and_exit_2(tiny, tmp_path, capsys, args, words):
    model, _, data = tiny
    spaces = {"empty": "", "backwards": "params:\n  ffn: {type: float, low: 0.5, high: 0.1}\nrecipe: 'x'\n",
              "nosuchstep": "params:\n  a: [0.1]\nrecipe: 'prune:sideways,amount={a}'\n",
              "good": "params:\n  a: [0.25]\nrecipe: 'prune:structured,amount={a}'\n"}
    for name, text in spaces.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    args = [a.format(**{k: tmp_path / f"{k}.yaml" for k in spaces}) for a in args]
    assert steelyard("search", model, "--data", data, "--storage", studies_db(tmp_path), *args) == 2
    one_line_error(capsys, *words)
    assert not (tmp_path / "studies.db").exists() or not optuna.get_all_study_names(studies_db(tmp_path))


@pytest.mark.parametrize("args, words", [
    (["--objective", "accuracy"], ["unknown --objective 'accuracy'", "latency, size, flops"]),
    (["--max-drop", "-1"], ["--max-drop must be zero or more"]),
    (["--output", "{model}"], ["would overwrite or contain the input"]),
    (["--trial-timeout", "0s"], ["--trial-timeout must be longer than zero"]),
    (["--storage", "mysql://u@127.0.0.1:1/db"], ["missing database driver"]),
    (["--val-fraction", "0.9"], ["--val-fraction must be between 0 and 0.8", "got 0.9"]),
])
def test_optimize_bad_input_is_one_line_and_exit_2(tiny, tmp_path, capsys, args, words):
    model, _, data = tiny
    args = [a.format(model=model) for a in args]
    assert steelyard("optimize", model, "--data", data, "--storage", studies_db(tmp_path), *args) == 2
    one_line_error(capsys, *words)


def test_study_show_of_an_unknown_study(tmp_path, capsys):
    from steelyard.search.storage import open_storage

    open_storage(studies_db(tmp_path))  # an empty storage (a missing one is "no study storage at ...")
    assert steelyard("study", "show", "nope", "--storage", studies_db(tmp_path)) == 2
    one_line_error(capsys, "no study named 'nope'", "the storage holds no study")
    assert steelyard("study", "show", "nope", "--storage", tmp_path / "none.db") == 2
    one_line_error(capsys, "no study storage at")
    assert not (tmp_path / "none.db").exists()
