"""Evaluation: the estimators (avg@n, unbiased pass@k, per-problem variance), expert-free
evaluation of a policy during training (EAPO.md §5, `evaluate`), benchmarks and their
loaders (`benchmarks`), `eapo eval` (`bench_eval`: expert-free or with experts, resumable
output in `itemstore`, episode records and their summary in `records`, code benchmarks
via `prompts` and the sandbox) and `eapo score` (`score`: generations made elsewhere).

The names below are loaded on first use (PEP 562), so that `eapo.evaluation.benchmarks`
(what `eapo eval` checks its arguments with) does not import torch before refusing one."""

from __future__ import annotations

from eapo.moved import forward

_NAMES = {
    "EvalResult": "eapo.evaluation.evaluate",
    "evaluate_policy": "eapo.evaluation.evaluate",
    "is_correct": "eapo.evaluation.metrics",
    "pass_at_k": "eapo.evaluation.metrics",
    "summarize": "eapo.evaluation.metrics",
}

__all__ = sorted(_NAMES)

__getattr__ = forward(__name__, _NAMES)
