"""Old name of `eapo.comparison.with_experts` (the workflow row's evaluation with experts
open), kept importable for one release."""

from eapo.comparison.with_experts import evaluate_with_experts

__all__ = ["evaluate_with_experts"]
