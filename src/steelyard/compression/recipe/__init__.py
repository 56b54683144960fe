"""Recipes: chains of compression and training steps, measured before and after.

>>> from steelyard.compression.recipe import parse_recipe, run_recipe, RecipeOptions
>>> recipe = parse_recipe("prune:structured,amount=0.3; finetune:epochs=1; quantize:int8-dynamic")
>>> result = run_recipe(handle, recipe, dataset, RecipeOptions(batch_size=32, max_length=128))
>>> result.speedup, result.size_ratio, result.metric_drop
>>> result.save("out/minilm-light")
"""

from steelyard.compression.recipe.parse import Recipe, RecipeStep, parse_recipe, valid_step_names
from steelyard.compression.recipe.result import RecipeResult, StepRecord
from steelyard.compression.recipe.runner import RecipeOptions, run_recipe

__all__ = [
    "Recipe", "RecipeOptions", "RecipeResult", "RecipeStep", "StepRecord", "parse_recipe", "run_recipe",
    "valid_step_names",
]
