"""Search spaces, recipe templates, objectives and model fingerprints: parsing and every bad input."""

from __future__ import annotations

import pytest

from steelyard.errors import ConfigError
from steelyard.search.space import SearchSpace
from steelyard.search.study import StudySpec, check_same_search, model_fingerprint, parse_objectives

TEMPLATE = ("prune:layers,amount={depth}; prune:structured,amount={ffn},heads={heads}; finetune:epochs={epochs}; "
            "quantize:{precision}")


def space(**params) -> SearchSpace:
    return SearchSpace.from_dict({"params": params, "recipe": TEMPLATE})


FULL = {
    "depth": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.25},
    "ffn": [0, 0.25],
    "heads": {"type": "categorical", "choices": [0, 0.5]},
    "epochs": {"type": "int", "low": 0, "high": 2},
    "precision": {"type": "categorical", "choices": ["none", "int8-dynamic"]},
}


def test_recipe_template_drops_steps_that_are_all_off_and_keeps_partial_ones():
    s = space(**FULL)
    everything = {"depth": 0.25, "ffn": 0.25, "heads": 0.5, "epochs": 2, "precision": "int8-dynamic"}
    assert s.recipe_text(everything) == ("prune:layers,amount=0.25; prune:structured,amount=0.25,heads=0.5; "
                                         "finetune:epochs=2; quantize:int8-dynamic")
    # a step is dropped only when all of its placeholders are off; heads alone keeps the structured step
    assert s.recipe_text({**everything, "depth": 0.0, "ffn": 0, "epochs": 0, "precision": "none"}) == \
        "prune:structured,amount=0,heads=0.5"
    assert s.recipe_text(dict.fromkeys(everything, 0) | {"precision": "none"}) == ""
    assert s.size() == 3 * 2 * 2 * 3 * 2
    assert s.grid()["depth"] == [0.0, 0.25, 0.5] and s.grid()["epochs"] == [0, 1, 2]


def test_yaml_round_trip_and_list_form(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("params:\n  - {name: lr, type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n"
                    "  - {name: kd, type: bool}\nrecipe: 'finetune:lr={lr}'\n")
    s = SearchSpace.from_yaml(path)
    assert s.names == ["lr", "kd"] and s.params[0].log
    assert SearchSpace.from_dict(s.to_dict()) == s
    assert s.size() is None  # a float range without a step cannot be enumerated
    assert s.recipe_text({"lr": 3e-4, "kd": True}) == "finetune:lr=0.0003"
    assert set(s.distributions()) == {"lr", "kd"}


@pytest.mark.parametrize("data, words", [
    ({"params": {}}, ["empty"]),
    ({}, ["empty"]),
    ({"params": {"a": {"type": "float", "low": 1, "high": 0}}}, ["'a'", "low 1 is above high 0"]),
    ({"params": {"a": {"type": "categorical", "choices": []}}}, ["'a'", "'choices' is empty"]),
    ({"params": {"a": {"type": "uniform", "low": 0, "high": 1}}}, ["unknown type 'uniform'", "int, float, "
                                                                    "categorical, bool"]),
    ({"params": {"a": {"type": "float", "low": 0, "high": 1, "log": True}}}, ["log range must stay above zero"]),
    ({"params": {"a": {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1}}}, ["log range cannot"]),
    ({"params": {"a": {"type": "int", "low": 0, "high": 2.5}}}, ["whole 'high'"]),
    ({"params": {"a": {"type": "float", "low": 0, "high": 1, "step": 0}}}, ["step must be positive"]),
    ({"params": {"a": {"type": "float", "low": 0, "hihg": 1}}}, ["unknown key hihg"]),
    ({"params": {"a": {"type": "float", "low": 0}}}, ["needs 'low' and 'high'"]),
    ({"params": {"a": {"type": "bool", "low": 0}}}, ["belong to int and float"]),
    ({"params": {"a": [1, 1]}}, ["duplicated choices"]),
    ({"params": {"a": [0, 1]}, "recipe": "prune:layers,amount={b}"}, ["{b}", "not a parameter"]),
    ({"params": {"a": [0, 1]}, "recipe": "  "}, ["recipe template", "empty"]),
    ({"params": {"a": [0, 1]}, "steps": []}, ["unknown key steps"]),
    ({"params": {"bad name": [0, 1]}}, ["letters, digits"]),
])
def test_bad_spaces_are_one_line_config_errors(data, words):
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_dict(data)
    text = str(err.value)
    assert "\n" not in text
    for word in words:
        assert word in text, text


def test_bad_yaml_file_and_empty_file(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "broken.yaml").write_text("params: [a\n")
    with pytest.raises(ConfigError, match="is empty"):
        SearchSpace.from_yaml(tmp_path / "empty.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SearchSpace.from_yaml(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        SearchSpace.from_yaml(tmp_path / "missing.yaml")


def test_grid_needs_steps():
    s = SearchSpace.from_dict({"params": {"lr": {"type": "float", "low": 0.1, "high": 1.0}}})
    with pytest.raises(ConfigError, match="needs a step"):
        s.grid()


def test_objectives_parse_and_validate():
    objs = parse_objectives("accuracy:max, latency:minimize")
    assert [(o.name, o.direction) for o in objs] == [("accuracy", "max"), ("latency", "min")]
    for text, words in (("accuracy", "maximize or minimize"), ("accuracy:up", "accuracy:max"), ("", "at least one"),
                        ("accuracy:max,accuracy:min", "given twice"),
                        ("wat:max", "valid objectives: accuracy, latency")):
        with pytest.raises(ConfigError, match=words):
            parse_objectives(text, ("accuracy", "latency"))


def test_fingerprint_follows_the_files_not_the_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, weights in ((a, b"\x01" * 5000), (b, b"\x01" * 5000)):
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "bert"}')
        (folder / "model.safetensors").write_bytes(weights)
        (folder / "README.md").write_text(f"notes for {folder.name}")  # not part of the model
    assert model_fingerprint(str(a)) == model_fingerprint(str(b))
    (b / "model.safetensors").write_bytes(b"\x02" * 5000)
    assert model_fingerprint(str(a)) != model_fingerprint(str(b))
    assert model_fingerprint("org/model") != model_fingerprint("org/other")


def test_another_model_objectives_space_or_settings_are_refused():
    s = space(**FULL).to_dict()
    base = StudySpec("st", "a", "sha256:a", parse_objectives("accuracy:max,latency:min"), s, "bbc-news",
                     settings={"max_length": 128})
    check_same_search(base, base)
    cases = [
        (StudySpec("st", "b", "sha256:b", base.objectives, s, "bbc-news", settings=base.settings),
         "belongs to model a (sha256:a), not b"),
        (StudySpec("st", "a", "sha256:a", parse_objectives("accuracy:max"), s, "bbc-news", settings=base.settings),
         "optimizes accuracy:max,latency:min"),
        (StudySpec("st", "a", "sha256:a", base.objectives, {"params": {"x": {"type": "bool"}}}, "bbc-news",
                   settings=base.settings), "another search space"),
        (StudySpec("st", "a", "sha256:a", base.objectives, s, "digits", settings=base.settings), "data bbc-news"),
        (StudySpec("st", "a", "sha256:a", base.objectives, s, "bbc-news", settings={"max_length": 64}),
         "max_length 128 (now 64)"),
    ]
    for wanted, words in cases:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
            check_same_search(base, wanted)


def test_starting_points_bracket_the_space_and_take_the_measured_runtimes():
    """int8 alone, the cheapest corner (every share at its largest removed, distilled, int8), the corner with
    half the heads back, the half corner, then two common recipes; the corner points are served in the
    runtime measured fastest on the corner's structure, the others in the one measured fastest on the
    uncompressed model."""
    from steelyard.search.optimize import corner_structure, starting_points

    built = SearchSpace.from_dict({"params": {
        "depth": [0.0, 0.1667, 0.3333, 0.5, 0.6667], "ffn": [0.0, 0.25, 0.5, 0.75], "heads": [0.0, 0.25, 0.5, 0.75],
        "recovery": ["none", "finetune:epochs=1", "distill:epochs=1"], "precision": ["none", "int8-dynamic"],
        "backend": ["torch", "onnxruntime", "openvino"]},
        "recipe": "prune:layers,amount={depth}; prune:structured,amount={ffn},heads={heads}; {recovery}; "
                  "quantize:{precision}"})
    points = starting_points(built, "onnxruntime", "torch")
    assert len(points) == 6 and [p["backend"] for p in points] == ["onnxruntime", "torch", "torch", "torch",
                                                                   "onnxruntime", "onnxruntime"]
    assert points[0] == {"depth": 0.0, "ffn": 0.0, "heads": 0.0, "recovery": "none", "precision": "int8-dynamic",
                         "backend": "onnxruntime"}
    assert points[1] == {"depth": 0.6667, "ffn": 0.75, "heads": 0.75, "recovery": "distill:epochs=1",
                         "precision": "int8-dynamic", "backend": "torch"}
    assert points[2] == {**points[1], "heads": 0.5}  # heads cost half what FFN costs to give back
    assert points[3] == {**points[1], "ffn": 0.5, "heads": 0.5}
    assert [p["backend"] for p in starting_points(built, "openvino")] == ["openvino"] * 6  # no corner ranking
    assert [p["backend"] for p in starting_points(built)] == ["torch"] * 6  # nothing measured: the first runtime
    # the structure optimize times in each runtime before trial 0: the corner's prune steps, nothing trained
    assert corner_structure(built) == "prune:layers,amount=0.6667; prune:structured,amount=0.75,heads=0.75"
    tiny = SearchSpace.from_dict({"params": {"ffn": [0.0], "precision": ["none", "int8-dynamic"]}})
    assert starting_points(tiny) == [{"ffn": 0.0, "precision": "int8-dynamic"}]  # one distinct point, once
    assert corner_structure(tiny) is None  # no recipe template, nothing to prune


def test_recovery_steps_beyond_one_epoch_get_the_epochs_they_need():
    """``--recovery-steps 300`` on 1,469 training rows (92 steps an epoch at batch 16) runs 300 steps, not 92."""
    from steelyard.search.optimize import recovery_epochs

    assert recovery_epochs(300, 1469) == 4 and recovery_epochs(92, 1469) == 1 and recovery_epochs(93, 1469) == 2
    assert recovery_epochs(100, None) == 1 and recovery_epochs(5, 3) == 5


def test_a_recipe_that_only_trains_costs_the_original_and_is_pruned_once_a_cheaper_one_fits():
    """optimize's hopeless-trial rule: distilling the original into itself changes no structure and no precision,
    so its cost is the original's; once a trial within budget is cheaper, it is pruned before any training step
    (the acceptance run of BENCHMARKS §10c had spent 10 minutes on such a trial)."""
    from steelyard.compression.recipe import parse_recipe
    from steelyard.search.executor import TrialContext, TrialPruned
    from steelyard.search.recipe_objective import RecipeObjective, original_cost

    fitting = {"drop": 0.5, "latency": 0.2, "size": 10.0, "size_ratio": 4.0, "flops": 3.0, "flops_ratio": 0.25}
    assert original_cost("latency", fitting) == 1.0 and original_cost("size", fitting) == 40.0
    assert original_cost("flops", fitting) == 12.0 and original_cost("flops", {"flops": 3.0}) is None
    only_training = parse_recipe("distill:epochs=1,max_steps=5")
    for cost in ("latency", "size", "flops"):
        rule = RecipeObjective("m", None, None, cost=cost, max_drop=1.0)  # type: ignore[arg-type]
        ctx = TrialContext(7, {}, "distill:epochs=1,max_steps=5", history=[fitting])
        with pytest.raises(TrialPruned, match=rf"{cost} .* \(the original's: the recipe only trains\) cannot beat"):
            rule._prune_if_hopeless(ctx, only_training, handle=None, options=object())
        over_budget = TrialContext(8, {}, "distill:epochs=1,max_steps=5", history=[{**fitting, "drop": 3.0}])
        rule._prune_if_hopeless(over_budget, only_training, handle=None, options=object())  # nothing fits yet: runs
