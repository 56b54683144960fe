"""A recipe on a causal LM: calibrated layer dropping, recovery on the next-token loss, int4, perplexity."""

from __future__ import annotations

import pytest
from llm_toys import saved_llama, weather_text

from steelyard.compression.recipe import RecipeOptions, parse_recipe, run_recipe
from steelyard.data import load_dataset
from steelyard.models import LoadConfig, load_model

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = RecipeOptions(max_length=16, batch_size=8, eval_batch_size=16, n_resamples=100, measure_latency=False,
                     calibration_batches=4, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm-recipe")
    handle = load_model(str(saved_llama(root / "llama")), LoadConfig(task="causal-lm"))
    return handle, load_dataset(str(weather_text(root / "weather.txt")), "causal-lm")


def test_drop_recover_int4_on_plain_text(llm):
    handle, text = llm
    dropped = run_recipe(handle, parse_recipe("prune:layers-angular,amount=0.25"), text, FAST)
    recovered = run_recipe(handle, parse_recipe(
        "prune:layers-angular,amount=0.25; finetune:epochs=4,lr=0.01; quantize:int4-weight-only"), text, FAST)
    assert dropped.before.metric == recovered.after.metric == "perplexity"
    ppl_before = dropped.before.headline.value
    ppl_dropped = dropped.after.headline.value
    ppl_recovered = recovered.after.headline.value
    # a random model on repetitive text: next-token training takes perplexity far below the original's
    assert ppl_recovered < 0.3 * min(ppl_before, ppl_dropped)
    assert [s.name for s in recovered.steps] == ["prune:layers-angular", "finetune", "quantize:int4-weight-only"]
    assert "layers: 4 → 3" in recovered.steps[0].notes[0]
    assert recovered.after.bytes < recovered.before.bytes
