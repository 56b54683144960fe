"""Compare models on one harness, project them onto hardware, and recommend one under constraints."""

from steelyard.comparison.compare import compare
from steelyard.comparison.config import CompareConfig, Constraints
from steelyard.comparison.result import CandidateResult, Comparison, Option

__all__ = ["CandidateResult", "CompareConfig", "Comparison", "Constraints", "Option", "compare"]
