"""Expert-free evaluation (EAPO.md §5): the policy alone, consult action locked, scored by
avg@n, unbiased pass@k and the per-problem variance across samples."""

from eapo.evaluation.evaluate import EvalResult, evaluate_policy
from eapo.evaluation.metrics import is_correct, pass_at_k, summarize

__all__ = ["EvalResult", "evaluate_policy", "is_correct", "pass_at_k", "summarize"]
