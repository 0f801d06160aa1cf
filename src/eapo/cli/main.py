"""The `eapo` command line: parses, calls the library, prints. Nothing else lives here.

Logging handlers are configured only in the CLI (`eapo.cli._common.setup_logging`; library
modules just get a logger).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from eapo.cli._common import EapoGroup, output_console, setup_logging

app = typer.Typer(cls=EapoGroup, add_completion=False, no_args_is_help=True, help="Expert-Assisted Policy Optimization.")


@app.command("build-models")
def build_models(
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where to build (default $EAPO_CACHE_DIR or ~/.cache/eapo).")] = None,
) -> None:
    """Build (or find cached) the tiny policy and expert, in Hugging Face format."""
    from eapo.models.build import ensure_tiny_models

    console = output_console()
    paths = ensure_tiny_models(cache_dir)
    for role, path in paths.items():
        console.print(f"{role}: {path}")


@app.command()
def rollout(
    out: Annotated[Path, typer.Option(help="JSON Lines file to write the episodes to.")] = Path("runs/rollout.jsonl"),
    n: Annotated[int, typer.Option(help="Number of episodes.")] = 32,
    expert: Annotated[str, typer.Option(help="oracle | model | noisy-oracle")] = "oracle",
    policy: Annotated[Optional[str], typer.Option(help="Policy model folder or hub id (default: the tiny policy).")] = None,
    rho: Annotated[float, typer.Option(help="Acceptance rate of expert replies.")] = 1.0,
    k: Annotated[int, typer.Option(help="Max queries per consultation (K).")] = 3,
    turns: Annotated[int, typer.Option(help="Turn budget.")] = 6,
    temperature: float = 1.0,
    seed: int = 0,
    cache_dir: Optional[Path] = None,
    system_prompt: Annotated[Optional[bool], typer.Option(
        "--system-prompt/--no-system-prompt",
        help="The protocol's system text (default: on for --policy, off for the tiny policy, which was "
             "warm-started without it).")] = None,
    backend: Annotated[str, typer.Option(help="hf | vllm: what generates the policy's turns (vllm: a vllm.LLM in "
                                              "this process, prefix caching on).")] = "hf",
    verbose: bool = False,
) -> None:
    """Roll out the policy with experts on the built-in task and dump every episode."""
    setup_logging(verbose)
    from eapo.models.checks import PolicyCheckError
    from eapo.models.resolve import ModelArgumentError, check_model
    from eapo.rollout.backends import check_backend
    from eapo.rollout.config import ROLLOUT_EXPERTS

    console = output_console()
    try:  # the arguments first: nothing is built or loaded for a wrong one
        if expert not in ROLLOUT_EXPERTS:
            raise ValueError(f"--expert: unknown expert {expert!r}; valid: {', '.join(ROLLOUT_EXPERTS)}")
        policy = check_model(policy, option="--policy") if policy else None
        check_backend(backend)
    except ValueError as e:  # ModelArgumentError is one
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    from eapo.rollout.demo import run_rollout_demo  # torch and transformers: after the checks

    try:
        summary = run_rollout_demo(out=out, n=n, expert=expert, policy=policy, rho=rho, k=k, turns=turns,
                                   temperature=temperature, seed=seed, cache_dir=cache_dir, system_prompt=system_prompt,
                                   backend=backend)
    except PolicyCheckError as e:
        console.print(f"[red]policy error:[/red] {e}")
        raise typer.Exit(2) from None
    table = Table(title=f"{n} episodes -> {out}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command("validate-dump")
def validate_dump(path: Path) -> None:
    """Check a rollout dump against the documented format."""
    from eapo.rollout.dump import validate_file

    console = output_console()
    try:
        count = validate_file(path)
    except (ValueError, OSError) as e:
        console.print(f"[red]invalid:[/red] {e}")
        raise typer.Exit(1) from None
    console.print(f"{path}: {count} valid records")


QUICK = [
    "rl.steps=40", "rl.prompts_per_step=4", "rl.save_steps=20", "rl.log_steps=5", "eval.every_steps=20",
    "eval.val_size=50", "eval.test_size=100", "eval.n=2", "eval.k=[1,2]",
]


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="YAML configuration (default: the embedded default).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set rl.steps=100 (repeatable).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (default: output_dir of the config).")] = None,
    arms: Annotated[str, typer.Option(help="Comma-separated arms to train from the same start: self_rl, eapo.")] = "self_rl,eapo",
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory from its last complete checkpoint.")] = None,
    quick: Annotated[bool, typer.Option(help="A short run (a few minutes on 2 CPU cores).")] = False,
    model: Annotated[Optional[str], typer.Option(help="Policy: any local folder or hub id of a causal LM (skips the tiny warm start).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Train on a dataset: a registered set (dapo_math, math500, gsm8k, ...) or a "
                                                     ".jsonl file; sets task.name=dataset, task.data=DATA (docs/WALKTHROUGH.md).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Cache of tiny models and warm starts.")] = None,
    verbose: bool = False,
    num_processes: Annotated[int, typer.Option(help="Train data-parallel in N processes (re-launches through `accelerate launch`).")] = 1,
    accelerate_config: Annotated[Optional[Path], typer.Option(help="accelerate config for --num-processes (DDP, DeepSpeed, FSDP: examples/accelerate/).")] = None,
) -> None:
    """Warm start, then self-exploratory RL and EAPO from the same start; expert-free test table."""
    setup_logging(verbose)
    from eapo.distributed.collective import env_rank, env_world_size
    from eapo.models.resolve import ModelArgumentError, check_model
    from eapo.schema import TrainConfig
    from eapo.typed_yaml import ConfigError, load_config

    console = output_console()
    if data is not None:  # before a relaunch, so every process gets it
        set_ = [*(set_ or []), "task.name=dataset", f"task.data={data}"]
    # The cheap checks first, in this process, before any process is started or model loaded:
    # the configuration, the arms, the model argument.
    overrides = (QUICK if quick else []) + list(set_ or [])
    config_path = config
    if resume is not None and config is None:
        config_path = resume / "config.yaml"  # the resolved config the interrupted run saved
        if not config_path.exists():
            console.print(f"[red]--resume:[/red] {resume} has no config.yaml; is it a directory made by eapo train?")
            raise typer.Exit(2)
    try:
        cfg = load_config(TrainConfig, str(config_path) if config_path else None, overrides)
    except (ConfigError, OSError) as e:
        console.print(f"[red]configuration error:[/red] {e}")
        raise typer.Exit(2) from None
    arm_list = tuple(a.strip() for a in arms.split(",") if a.strip())
    bad = [a for a in arm_list if a not in ("self_rl", "eapo")]
    if bad or not arm_list:
        console.print(f"[red]--arms:[/red] unknown arm(s) {bad}; valid: self_rl, eapo")
        raise typer.Exit(2)
    try:
        if model:
            model = check_model(model)
        elif cfg.model.policy:
            check_model(cfg.model.policy, option="model.policy")
    except ModelArgumentError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    from eapo.assembly.run import with_policy_prompt

    cfg = with_policy_prompt(cfg, model)  # a given policy gets the protocol's system text
    if num_processes > 1 and env_world_size() == 1:  # the parent: start the children, report their exit code
        from eapo.distributed.launch import relaunch, train_args

        raise typer.Exit(relaunch(num_processes, train_args(
            config=config, sets=set_ or [], out=out, arms=arms, resume=resume, quick=quick, model=model,
            cache_dir=cache_dir, verbose=verbose), config_file=accelerate_config))
    from eapo.models.checks import PolicyCheckError
    from eapo.training.checkpoints import CheckpointError
    from eapo.assembly.arms import run_arms, table_rows

    run_dir = resume or out or Path(cfg.output_dir)
    n_test = min(cfg.task.test_size, cfg.eval.test_size or cfg.task.test_size)
    if cfg.task.name != "chain":  # read the data now: a wrong name, path or size fails before any model loads
        from eapo.assembly.run import build_task, given_policy, with_task_settings

        logging.getLogger("math_verify").setLevel(logging.ERROR)  # timeouts are off on purpose (eapo.rewards.math)
        try:
            given_policy(cfg, model)
            task = build_task(cfg)
        except (ValueError, KeyError, OSError) as e:
            console.print(f"[red]task error:[/red] {e.args[0] if isinstance(e, KeyError) and e.args else e}")
            raise typer.Exit(2) from None
        cfg = with_task_settings(cfg, task)
        n_test = len(task.split("test")[: cfg.eval.test_size])
    try:
        if env_world_size() > 1:  # one of several processes (eapo.distributed)
            from eapo.assembly.arms_distributed import run_arms_distributed as run_arms
        rows = run_arms(cfg, run_dir, arms=arm_list, model=model, cache_dir=cache_dir)
    except PolicyCheckError as e:
        console.print(f"[red]policy error:[/red] {e}")
        raise typer.Exit(2) from None
    except (CheckpointError, FileExistsError, OSError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    if env_rank() != 0:  # the main process prints the table
        return
    ks = tuple(cfg.eval.k)
    table = Table(title=f"Expert-free test accuracy (%), {n_test} problems, seed {cfg.seed} -> {run_dir}")
    for col in ["policy", "greedy", f"avg@{cfg.eval.n}", *[f"pass@{k}" for k in ks], "consult attempts", "wall s"]:
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=col == "policy")
    for r in table_rows(rows, ks):
        table.add_row(*r)
    console.print(table)
    console.print("base = the starting policy before RL (the tiny policy's warm start on the chain task); "
                  "self-RL = the same trainer with consulting disabled; "
                  f"all columns expert-free (eval.lock={cfg.eval.lock}).")


@app.command()
def summarize(
    runs: Annotated[list[Path], typer.Argument(help="Run directories of `eapo train`, one per seed.")],
    out: Annotated[Optional[Path], typer.Option(help="Write the markdown table here too.")] = None,
) -> None:
    """Mean and spread over seeds, with paired per-problem differences between the arms."""
    from eapo.training.summary import markdown, summarize as summarize_runs

    text = markdown(summarize_runs(runs))
    typer.echo(text)  # plain markdown: no wrapping, pipes into a file as is
    if out:
        out.write_text(text)


@app.command()
def demo(cache_dir: Optional[Path] = None) -> None:
    """A rollout of the tiny policy with the oracle expert, dumped to runs/demo/rollout.jsonl."""
    rollout(out=Path("runs/demo/rollout.jsonl"), n=32, expert="oracle", policy=None, rho=1.0, k=3, turns=6,
            temperature=1.0, seed=0, cache_dir=cache_dir, system_prompt=None, backend="hf", verbose=False)


# `eval` and `score` live in their own module (eapo.cli.eval_cmd).
from eapo.cli import eval_cmd as _eval_cmd  # noqa: E402

app.command("eval")(_eval_cmd.eval_)
app.command()(_eval_cmd.score)

# `serve-expert` lives in its own module (eapo.cli.serve).
from eapo.cli import serve as _serve  # noqa: E402

app.command("serve-expert")(_serve.serve_expert)

# `report` lives in its own module (eapo.cli.report).
from eapo.cli import report as _report  # noqa: E402

app.command("report")(_report.report)

# `compare` lives in its own module (eapo.cli.compare).
from eapo.cli import compare as _compare  # noqa: E402

app.command("compare")(_compare.compare)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # `python -m eapo.cli.main`: how accelerate launch starts each process
    main()
