"""Evaluation: the estimators (avg@n, unbiased pass@k, per-problem variance), expert-free
evaluation of a policy during training (EAPO.md §5, `evaluate`), benchmarks and their
loaders (`benchmarks`), `eapo eval` (`bench_eval`: expert-free or with experts, resumable
output in `itemstore`, episode records and their summary in `records`, code benchmarks
via `prompts` and the sandbox) and `eapo score` (`score`: generations made elsewhere)."""

from eapo.evaluation.evaluate import EvalResult, evaluate_policy
from eapo.evaluation.metrics import is_correct, pass_at_k, summarize

__all__ = ["EvalResult", "evaluate_policy", "is_correct", "pass_at_k", "summarize"]
