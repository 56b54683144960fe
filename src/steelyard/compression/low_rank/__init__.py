"""low_rank methods; see the package docstring of steelyard.compression."""
