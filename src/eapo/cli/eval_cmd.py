"""`eapo eval` and `eapo score`: parse, call `eapo.evaluation`, print. Registered in `main.py`.

`eval` checks everything cheap (the benchmark name, the options, the model argument)
before it builds or loads a model, so a typo is refused at once."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from eapo.cli._common import output_console, setup_logging


def _fields(field: list[str] | None) -> dict[str, str]:
    out = {}
    for item in field or []:
        if "=" not in item:
            raise ValueError(f"--field takes KEY=NAME (KEY in id, question, answer, choices), got {item!r}")
        key, name = item.split("=", 1)
        out[key.strip()] = name.strip()
    return out


def _print_metrics(console, title: str, metrics: dict) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    console.print(table)


def eval_(
    benchmark: Annotated[str, typer.Option(help="Registered benchmark name (incl. chain: the built-in task's test split) or a JSON Lines file.")],
    model: Annotated[Optional[str], typer.Option(help="Policy folder or hub id (default: the tiny policy).")] = None,
    n: Annotated[int, typer.Option("-n", help="Samples per problem.")] = 4,
    k: Annotated[str, typer.Option("-k", help="pass@k values, comma-separated (each <= n).")] = "1,2,4",
    limit: Annotated[Optional[int], typer.Option(help="Only the first M problems.")] = None,
    lock: Annotated[Optional[str], typer.Option(help="forbid | refuse | both: how the consult action is locked "
                                                     "(expert-free; default forbid).")] = None,
    experts: Annotated[Optional[Path], typer.Option(help="YAML with an `experts:` section: the expert-assisted workflow "
                                                         "baseline (consulting open, rho = 1) instead of a lock.")] = None,
    turns: Annotated[int, typer.Option(help="Turn budget.")] = 4,
    tokens_per_turn: Annotated[int, typer.Option(help="Tokens per turn.")] = 256,
    max_tokens: Annotated[int, typer.Option(help="Policy tokens per episode.")] = 1024,
    temperature: float = 1.0,
    system_prompt: Annotated[Optional[bool], typer.Option(
        "--system-prompt/--no-system-prompt",
        help="The protocol's system text (default: on for --model, off for the tiny policy; off for a policy "
             "warm-started without it, as the built-in training runs are).")] = None,
    greedy: Annotated[bool, typer.Option(help="Also one greedy episode per problem.")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Folder for items.jsonl and summary.json; an interrupted run "
                                                     "there continues where it stopped.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Start over: delete an earlier evaluation in --out.")] = False,
    batch_size: Annotated[int, typer.Option(help="Episodes per generation call (part of the identity of a run).")] = 64,
    code_timeout: Annotated[float, typer.Option(help="Seconds per program in the sandbox (code benchmarks).")] = 10.0,
    workers: Annotated[int, typer.Option(help="Programs run at once in the sandbox (code benchmarks).")] = 4,
    field: Annotated[Optional[list[str]], typer.Option(help="For a .jsonl benchmark: KEY=NAME with KEY in id, question, answer, choices.")] = None,
    seed: int = 0,
    backend: Annotated[str, typer.Option(help="hf | vllm: what generates (vllm: a vllm.LLM in this process, prefix "
                                              "caching on; what to use for avg@32 on a real benchmark).")] = "hf",
    cache_dir: Optional[Path] = None,
    verbose: bool = False,
) -> None:
    """A policy on a benchmark: avg@n, unbiased pass@k, variance; expert-free, or with --experts."""
    setup_logging(verbose)
    # Timeouts are off on purpose (see eapo.rewards.math); math-verify would warn about it.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from eapo.evaluation.benchmarks import resolve_spec
    from eapo.evaluation.itemstore import ResumeError
    from eapo.models.resolve import check_model
    from eapo.rollout.backends import check_backend, load_backend
    from eapo.schema import RolloutConfig
    from eapo.typed_yaml import ConfigError

    console = output_console()
    try:
        ks = tuple(int(x) for x in k.split(",") if x.strip())
        experts_cfg = None
        if experts is not None and lock is not None:
            raise ValueError("--lock and --experts exclude each other: with experts, consulting is open (rho = 1)")
        if experts is not None:
            from eapo.evaluation.workflow import load_experts_config

            experts_cfg = load_experts_config(experts)
        with_system = system_prompt if system_prompt is not None else model is not None
        rollout = RolloutConfig(tokens_per_turn=tokens_per_turn, max_policy_tokens=max_tokens,
                                max_completion_tokens=max(2 * max_tokens, 512),
                                system_prompt=None if with_system else "")  # None: the protocol's text
        fields = _fields(field) or None
        check_backend(backend)
        resolve_spec(benchmark, fields)  # an unknown name is refused here, listing the known ones
        if benchmark.endswith(".jsonl") and not Path(benchmark).expanduser().is_file():
            raise ValueError(f"no such benchmark file: {benchmark}")
        # A local folder is recorded by its absolute path, so a run continued from another
        # working directory is recognised as the same evaluation.
        policy = None
        if model:
            policy = check_model(model)
            policy = str(Path(policy).resolve()) if Path(policy).exists() else policy
        # The arguments are known good: now pay for torch and transformers (seconds).
        from eapo.evaluation.bench_eval import BenchEvalConfig, evaluate_benchmark
        from eapo.models.build import ensure_tiny_models

        cfg = BenchEvalConfig(benchmark=benchmark, model=policy or "tiny", n=n, ks=ks, limit=limit,
                              lock=lock or "forbid", experts=experts_cfg, temperature=temperature, greedy=greedy,
                              turn_budget=turns, seed=seed, batch_size=batch_size, rollout=rollout, fields=fields,
                              code_timeout_s=code_timeout, code_workers=workers, backend=backend)
        if policy is None:  # the tiny policy, built (or found in the cache) once the options are known good
            policy = str(ensure_tiny_models(cache_dir)["policy"])
            cfg = dataclasses.replace(cfg, model=policy)
        loaded = load_backend(backend, policy, seed=seed)
        pool = None
        if experts_cfg is not None:  # the workflow baseline consults the experts a run trained with
            from eapo.assembly.pool import build_workflow_pool

            pool = build_workflow_pool(experts_cfg, resolve_spec(benchmark, fields), policy=cfg.model, seed=seed)
        res = evaluate_benchmark(cfg, model=loaded.model, tokenizer=loaded.tokenizer, backend=loaded.backend,
                                 pool=pool, out=out, overwrite=overwrite)
    except KeyboardInterrupt:
        where = f"rerun the same command to continue in {out}" if out else "no --out, nothing was kept"
        console.print(f"[yellow]interrupted:[/yellow] {where}")
        raise typer.Exit(130) from None
    except (ResumeError, ConfigError, ValueError, KeyError, OSError) as e:
        console.print(f"[red]error:[/red] {e.args[0] if isinstance(e, KeyError) and e.args else e}")
        raise typer.Exit(2) from None
    s = res.summary
    continued = f", {res.resumed_problems} continued from {out}" if res.resumed_problems else ""
    _print_metrics(console, f"{s['benchmark']} ({s['lock']}): {s['problems']} problems, n={n}{continued}", s)
    if out:
        console.print(f"wrote {out / 'items.jsonl'} and {out / 'summary.json'} ({res.wall_s:.1f} s)")


def score(
    benchmark: Annotated[str, typer.Option(help="Registered benchmark name, or your own .jsonl file.")],
    predictions: Annotated[Path, typer.Option(help="JSONL with `id` and `completion` (or `completions`: list).")],
    scorer: Annotated[Optional[str], typer.Option(help="math | integer | choice | em | f1 | code (default: the benchmark's).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write items.jsonl and summary.json here.")] = None,
    field: Annotated[Optional[list[str]], typer.Option(help="For a .jsonl benchmark: KEY=NAME with KEY in id, question, answer, choices.")] = None,
    code_timeout: Annotated[float, typer.Option(help="Seconds per program in the sandbox (scorer code).")] = 10.0,
    workers: Annotated[int, typer.Option(help="Programs run at once in the sandbox (scorer code).")] = 4,
) -> None:
    """Score saved completions against a benchmark's gold answers (avg@n, pass@k, variance)."""
    from eapo.evaluation.benchmarks import load_benchmark, resolve_spec
    from eapo.evaluation.score import read_predictions, score_predictions, write_report

    # Timeouts are off on purpose (see eapo.rewards.math); math-verify would warn about it.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    console = output_console()
    try:
        fields = _fields(field)
        name = scorer or resolve_spec(benchmark, fields).scorer
        report = score_predictions(load_benchmark(benchmark, fields=fields), read_predictions(predictions), name,
                                   workers=workers, code_timeout_s=code_timeout)
    except (ValueError, KeyError, OSError) as e:
        console.print(f"[red]error:[/red] {e.args[0] if isinstance(e, KeyError) and e.args else e}")
        raise typer.Exit(2) from None
    _print_metrics(console, f"{benchmark}: {len(report.items)} completions, scorer {name}", report.summary)
    if out:
        items_path, summary_path = write_report(report, out)
        console.print(f"wrote {items_path} and {summary_path}")
