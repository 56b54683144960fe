"""pruning methods; see the package docstring of steelyard.compression."""
