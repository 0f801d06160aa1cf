"""`eapo eval`: a policy on a benchmark, expert-free or with experts, resumable.

The benchmark's problems go through the same rollout engine as training (the prompt is
rendered with the model's chat template once, later turns are token ids). Modes:
  - expert-free (EAPO.md §5): the consult action locked by "forbid" (the consult tag cannot
    be decoded) or "refuse" (rho = 0, attempts counted), or "both";
  - `experts`: the expert-assisted workflow baseline (EAPO.md §6): consulting open, every
    reply accepted (rho = 1), experts from an `experts:` YAML section
    (`eapo.evaluation.workflow`).
Each problem is rolled out `n` times at `temperature`, plus once greedily with `greedy`, by
the loop every evaluation shares (`eapo.evaluation.loop`).
Math benchmarks also accept a final `\\boxed{}`; code benchmarks (HumanEval) ask for the
whole function (`eapo.evaluation.prompts`). How episodes are scored and recorded, and how
the records are summarised: `eapo.evaluation.records`.

Output (`eapo.evaluation.itemstore`): `items.jsonl`, one record per episode; `summary.json`,
the summary of the records; `eval_config.json`, the identity of the evaluation.

Resuming: problems are processed in fixed blocks of `batch_size // n` consecutive problems
(by position in the benchmark), each block's episodes in one generation batch. Sampling
depends on the batch (one seed per generation call), so blocks, not single problems, are
the unit of work: a block is skipped when all its problems are complete in `items.jsonl`,
and otherwise run again from scratch, its old lines dropped. An interrupted evaluation
continued with the same settings therefore ends with exactly the items and summary of an
uninterrupted one, also when `--limit` grew in between (a smaller `--limit` than before
summarises the first problems of the larger run). The identity (model, benchmark data,
n, modes, sampling, turn and token limits, seed, block size, experts) must equal the saved
one; `limit` and `ks` may change (they change no item).

Not here: scoring rules (`eapo.rewards`), estimators (`eapo.evaluation.metrics`), the
training-time evaluation (`eapo.evaluation.evaluate`: the same loop, batched over all its
problems at once rather than block by block).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eapo.config import to_dict
from eapo.evaluation.benchmarks import BenchmarkSpec, benchmark_path, builtin_task, load_benchmark, resolve_spec
from eapo.evaluation.evaluate import LOCK_CHOICES, LOCKS
from eapo.evaluation.itemstore import ItemStore
from eapo.evaluation.loop import EvalLoop, default_backend, evaluating
from eapo.evaluation.metrics import mean
from eapo.evaluation.prompts import eval_problem
from eapo.evaluation.records import Scorer, episode_record, summarize_records
from eapo.progress import progress
from eapo.rollout.backend import GenerationBackend
from eapo.rollout.config import RolloutConfig
from eapo.types import Problem

log = logging.getLogger(__name__)

EXPERTS_MODE = "experts"
FORMAT = 1  # of eval_config.json and items.jsonl; bump when either changes meaning


@dataclass(frozen=True)
class BenchEvalConfig:
    """One `eapo eval` run. Everything but `limit`, `ks` and `code_workers` is its identity."""

    benchmark: str
    """Registered name or a `.jsonl` file."""
    model: str = ""
    """What the policy is (folder or hub id): recorded, and compared when continuing."""
    n: int = 4
    """Sampled episodes per problem."""
    ks: tuple[int, ...] = (1, 2, 4)
    """pass@k values, each <= n."""
    limit: int | None = None
    """Only the first `limit` problems."""
    lock: str = "forbid"
    """forbid | refuse | both: how consulting is locked (unused with `experts`)."""
    experts: Any = None
    """An `ExpertsConfig`: the expert-assisted workflow (consult open, rho = 1) instead of a lock."""
    temperature: float = 1.0
    greedy: bool = True
    """Also one greedy (temperature 0) episode per problem."""
    turn_budget: int = 4
    seed: int = 0
    batch_size: int = 64
    """Episodes per generation call; blocks hold max(1, batch_size // n) problems."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Tags, token limits, top-p, system prompt (its consult_mode and temperature are set here)."""
    fields: Mapping[str, str] | None = None
    """Field mapping for a `.jsonl` benchmark (id, question, answer, choices)."""
    code_timeout_s: float = 10.0
    """Wall-clock limit of one program in the sandbox."""
    code_workers: int = 4
    """Programs run at once."""
    backend: str = "hf"
    """What generates (`eapo.rollout.backends`): hf or vllm. Part of the identity: the two
    engines sample differently from the same seeds."""

    def __post_init__(self) -> None:
        for name in ("n", "turn_budget", "batch_size", "code_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.n for k in self.ks):
            raise ValueError(f"every k must be an int in [1, n={self.n}] (pass@k needs n >= k samples), got {self.ks}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.lock not in LOCK_CHOICES:
            raise ValueError(f"lock must be one of {LOCK_CHOICES}, got {self.lock!r}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.code_timeout_s > 0:
            raise ValueError(f"code_timeout_s must be > 0, got {self.code_timeout_s}")

    @property
    def modes(self) -> tuple[str, ...]:
        if self.experts is not None:
            return (EXPERTS_MODE,)
        return LOCKS if self.lock == "both" else (self.lock,)

    @property
    def problems_per_block(self) -> int:
        return max(1, self.batch_size // self.n)


@dataclass
class BenchEvalResult:
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    """Every record of the evaluated problems, in problem order."""
    resumed_problems: int = 0
    """Problems found complete in the output folder and not run again."""
    wall_s: float = 0.0


# --------------------------------------------------------------------------- identity


def _data_digest(spec: BenchmarkSpec) -> str:
    """A fingerprint of the benchmark's data, so edited data is not mixed with old items."""
    h = hashlib.sha256()
    if spec.builtin is not None:
        for p in builtin_task(spec.builtin).split("test"):
            h.update(json.dumps([p.id, p.question, p.answer]).encode())
        return f"builtin:{spec.builtin}:{h.hexdigest()[:16]}"
    with benchmark_path(spec).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()[:16]}"


def identity(cfg: BenchEvalConfig, spec: BenchmarkSpec) -> dict[str, Any]:
    """The settings that decide the items; a continued evaluation must match them."""
    rollout = dataclasses.replace(cfg.rollout, consult_mode="open", temperature=cfg.temperature)
    return {
        "format": FORMAT,
        "benchmark": spec.name,
        "scorer": spec.scorer,
        "data": _data_digest(spec),
        "fields": dict(cfg.fields or {}),
        "model": cfg.model,
        "n": cfg.n,
        "modes": list(cfg.modes),
        "experts": to_dict(cfg.experts) if cfg.experts is not None else None,
        "temperature": cfg.temperature,
        "greedy": cfg.greedy,
        "turn_budget": cfg.turn_budget,
        "seed": cfg.seed,
        "problems_per_block": cfg.problems_per_block,
        "rollout": to_dict(rollout),
        "code_timeout_s": cfg.code_timeout_s if spec.scorer == "code" else None,
        # only when not the default, so evaluations written before the option still continue
        **({"backend": cfg.backend} if cfg.backend != "hf" else {}),
    }


# --------------------------------------------------------------------------- the run


class _Runner:
    """Rolls out and scores one block of problems in every mode."""

    def __init__(self, cfg: BenchEvalConfig, spec: BenchmarkSpec, problems: Sequence[Problem], *, tokenizer: Any,
                 backend: GenerationBackend, pool: Any) -> None:
        self.scorer = Scorer(spec, problems, tokenizer, timeout_s=cfg.code_timeout_s, workers=cfg.code_workers)
        self.code = spec.scorer == "code"
        rollout = dataclasses.replace(cfg.rollout, tags=dataclasses.replace(
            cfg.rollout.tags, allow_boxed=spec.template_family == "math_boxed"))
        # The engine's own scoring is replaced by ours (code needs the whole problem, and
        # the records want the extracted answer); the loop's "exact" is a cheap placeholder.
        self.loops = {mode: EvalLoop(backend, tokenizer, rollout, consult_mode="open" if mode == EXPERTS_MODE else mode,
                                     temperature=cfg.temperature, n=cfg.n, greedy=cfg.greedy,
                                     turn_budget=cfg.turn_budget, batch_size=cfg.batch_size, seed=cfg.seed,
                                     pool=pool if mode == EXPERTS_MODE else None)
                      for mode in cfg.modes}

    def run_block(self, block: Sequence[Problem]) -> list[dict[str, Any]]:
        shown = [eval_problem(p) for p in block]
        records: list[dict[str, Any]] = []
        for mode, loop in self.loops.items():
            rolled = loop.roll(shown)
            for (ep, sample), (result, extra) in zip(rolled, self.scorer([r.episode for r in rolled])):
                records.append({**episode_record(ep, mode, sample, result, code=self.code), **extra})
        order = {p.id: i for i, p in enumerate(block)}
        modes = list(self.loops)
        records.sort(key=lambda r: (order[r["id"]], modes.index(r["mode"]), r["greedy"], r["sample"] or 0))
        return records


def _complete(records: Sequence[Mapping[str, Any]], cfg: BenchEvalConfig) -> set[str]:
    """Ids whose every expected episode (each mode, each sample, greedy) is recorded."""
    need = {(m, s) for m in cfg.modes for s in [*range(cfg.n), *([None] if cfg.greedy else [])]}
    have: dict[str, set[tuple[str, int | None]]] = {}
    for r in records:
        have.setdefault(str(r.get("id")), set()).add((r.get("mode"), r.get("sample")))
    return {pid for pid, got in have.items() if need <= got}


def evaluate_benchmark(
    cfg: BenchEvalConfig,
    *,
    model: Any = None,
    tokenizer: Any,
    backend: GenerationBackend | None = None,
    pool: Any = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    on_block: Callable[[int, int], None] | None = None,
) -> BenchEvalResult:
    """Evaluate the policy on `cfg.benchmark`; with `out`, continue what is already there.

    `backend` replaces `HFBackend(model, tokenizer)` (tests pass a scripted one; `model`
    may then be None). `pool`: the experts of `cfg.experts` (required with them; built by
    `eapo.assembly.pool.build_workflow_pool`, as `eapo eval` does). `on_block(done,
    total)` is called after each block is written (problems complete so far)."""
    t0 = time.perf_counter()
    spec = resolve_spec(cfg.benchmark, dict(cfg.fields) if cfg.fields else None)
    problems = load_benchmark(cfg.benchmark, limit=cfg.limit, fields=dict(cfg.fields) if cfg.fields else None)
    if not problems:
        raise ValueError(f"benchmark {spec.name!r} has no problems")
    backend = default_backend(model, tokenizer, backend, "evaluate_benchmark")
    if cfg.experts is not None and pool is None:  # built above this layer, from cfg.experts
        raise ValueError("cfg.experts is set: pass the pool it describes "
                         "(pool=eapo.assembly.pool.build_workflow_pool(cfg.experts, spec, policy=..., seed=...))")
    runner = _Runner(cfg, spec, problems, tokenizer=tokenizer, backend=backend, pool=pool)

    store = ItemStore(out, identity(cfg, spec)) if out is not None else None
    existing = store.open(overwrite=overwrite) if store is not None else []
    size = cfg.problems_per_block
    blocks = [problems[i:i + size] for i in range(0, len(problems), size)]
    complete = _complete(existing, cfg)
    done_blocks = [all(p.id in complete for p in b) for b in blocks]
    ours = {p.id for p in problems}
    kept_ids = {p.id for b, done in zip(blocks, done_blocks) if done for p in b}
    # Records of complete blocks stay; so do those of complete problems outside this run's
    # problems (a smaller --limit than before). Partial blocks are run again.
    kept = [r for r in existing if r["id"] in kept_ids or (r["id"] not in ours and r["id"] in complete)]
    if store is not None and (len(kept) != len(existing) or store.dropped_torn_line):
        store.rewrite(kept)
    resumed = len(kept_ids)
    if store is not None and resumed:
        log.info("continuing %s: %d of %d problems already complete", out, resumed, len(problems))
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in kept:
        by_id.setdefault(r["id"], []).append(r)

    first = cfg.modes[0]
    scored = [float(r["score"]) for r in kept if r["id"] in ours and r["mode"] == first and not r["greedy"]]
    if store is not None and not all(done_blocks):
        store.clear_summary()
    with evaluating(model), progress(total=len(problems), description=f"eval {spec.name}", initial=resumed) as bar:
        if scored:
            bar.note(f"avg@n={mean(scored):.3f}")
        done = resumed
        for block, skip in zip(blocks, done_blocks):
            if skip:
                continue
            records = runner.run_block(block)
            if store is not None:
                store.append(records)
            for r in records:
                by_id.setdefault(r["id"], []).append(r)
            scored += [float(r["score"]) for r in records if r["mode"] == first and not r["greedy"]]
            done += len(block)
            bar.advance(len(block))
            bar.note(f"avg@n={mean(scored):.3f}")
            if on_block is not None:
                on_block(done, len(problems))

    records = [r for p in problems for r in by_id[p.id]]
    summary: dict[str, Any] = {
        "benchmark": spec.name,
        "scorer": spec.scorer,
        "model": cfg.model,
        "modes": list(cfg.modes),
        "lock": EXPERTS_MODE if cfg.experts is not None else cfg.lock,
        "experts": to_dict(cfg.experts) if cfg.experts is not None else None,
        "n": cfg.n,
        "ks": list(cfg.ks),
        "problems": len(problems),
        "seed": cfg.seed,
        **summarize_records(records, [p.id for p in problems], cfg.modes, cfg.ks),
    }
    if store is not None:
        store.write_summary(summary)
    wall = time.perf_counter() - t0
    log.info("eval %s: %d problems (%d continued) in %.1f s", spec.name, len(problems), resumed, wall)
    return BenchEvalResult(summary=summary, records=records, resumed_problems=resumed, wall_s=wall)
