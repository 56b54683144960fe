"""Search over models, recipes and hyper-parameters; Pareto fronts and recommendations."""
