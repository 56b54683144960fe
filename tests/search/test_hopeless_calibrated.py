"""optimize's hopeless-trial rule on recipes whose int8 calibrates on data (OpenVINO's NNCF int8).

Such trials used to run in full, training included, because the cheap pre-training run had no data to
calibrate on: in BENCHMARKS §10e two of them took 19 of a 30-minute search. The cheap run now calibrates
on the trial's own data, so a recipe that cannot beat a trial within budget is pruned before training.
"""

from __future__ import annotations

import pytest

from text_toys import reviews_csv, tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


def test_an_openvino_int8_recipe_is_costed_and_pruned_before_training(tmp_path):
    pytest.importorskip("openvino", reason="openvino is the runtimes extra: pip install 'steelyard[runtimes]'")
    pytest.importorskip("nncf", reason="nncf is the runtimes extra: pip install 'steelyard[runtimes]'")
    from steelyard.compression.recipe import RecipeOptions, parse_recipe
    from steelyard.data.options import DataOptions
    from steelyard.search.executor import TrialContext, TrialPruned
    from steelyard.search.recipe_objective import RecipeObjective

    model = tiny_bert(tmp_path / "bert", layers=2)
    data = DataOptions(str(reviews_csv(tmp_path / "reviews.csv", 80)))
    options = RecipeOptions(eval_split="validation", batch_size=8, max_length=32, rounds=2, threads=1,
                            calibration_batches=2, progress=False)
    rule = RecipeObjective(str(model), data, options, cost="latency", max_drop=1.0)
    text = "prune:layers,amount=0.5; distill:epochs=1,max_steps=50; quantize:int8-dynamic"
    handle, dataset = rule.load()

    def hopeless(best_latency: float, with_data: bool = True) -> None:
        ctx = TrialContext(3, {"backend": "openvino"}, text, history=[{"drop": 0.0, "latency": best_latency}])
        recipe, served = rule._served(ctx, parse_recipe(text))
        assert served.serve == "openvino"
        rule._prune_if_hopeless(ctx, recipe, handle, served, dataset if with_data else None)

    # a trial within budget at a latency nothing reaches: the OpenVINO int8 recipe is measured untrained
    # (NNCF calibrated on the trial's training batches) and pruned before its 50 distillation steps
    with pytest.raises(TrialPruned, match=r"latency [0-9.e+-]+ before training cannot beat 1e-06"):
        hopeless(1e-6)
    hopeless(1e6)  # one it beats: the cheap run measures it, and the trial goes on to train
    hopeless(1e-6, with_data=False)  # nothing to calibrate on: not costed, so never pruned on a guess


def test_what_needs_data_is_known_once_and_a_served_int8_without_it_fails_before_any_work(tmp_path):
    """``needs_data`` answers for the hopeless rule and for ``run_recipe`` alike: a runtime's int8 calibrates,
    so serving one without data is a one-line error up front, not after the recipe's steps have run."""
    from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
    from steelyard.compression.recipe.runner import needs_data
    from steelyard.errors import DataError
    from steelyard.models import InputSpec, LoadConfig, load_model

    served_int8 = parse_recipe("prune:layers,amount=0.5; quantize:int8-dynamic")
    assert needs_data(served_int8, "openvino") and not needs_data(served_int8)  # torch's dynamic int8: no data
    assert not needs_data(parse_recipe("prune:layers,amount=0.5"), "openvino")  # OpenVINO fp32: no data
    assert needs_data(parse_recipe("quantize:int8-static"))  # a calibrated step, in any runtime
    handle = load_model(str(tiny_bert(tmp_path / "bert", layers=2)), LoadConfig(inputs=InputSpec(seq_len=16)))
    with pytest.raises(DataError, match=r"^openvino int8 calibrates on the recipe's data: pass --data"):
        run_recipe(handle, served_int8, None, RecipeOptions(serve="openvino", progress=False))
