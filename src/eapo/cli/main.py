"""The `eapo` command line: parses, calls the library, prints. Nothing else lives here.

Logging handlers are configured here and only here (library modules just get a logger).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Expert-Assisted Policy Optimization.")
console = Console()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command("build-models")
def build_models(
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where to build (default $EAPO_CACHE_DIR or ~/.cache/eapo).")] = None,
) -> None:
    """Build (or find cached) the tiny policy and expert, in Hugging Face format."""
    from eapo.models.build import ensure_tiny_models

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
    verbose: bool = False,
) -> None:
    """Roll out the policy with experts on the built-in task and dump every episode."""
    _setup_logging(verbose)
    from eapo.rollout.demo import run_rollout_demo

    summary = run_rollout_demo(out=out, n=n, expert=expert, policy=policy, rho=rho, k=k, turns=turns,
                               temperature=temperature, seed=seed, cache_dir=cache_dir)
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

    try:
        count = validate_file(path)
    except (ValueError, OSError) as e:
        console.print(f"[red]invalid:[/red] {e}")
        raise typer.Exit(1) from None
    console.print(f"{path}: {count} valid records")


@app.command()
def demo(cache_dir: Optional[Path] = None) -> None:
    """The embedded default: until the trainer lands, a rollout of the tiny policy with the oracle."""
    rollout(out=Path("runs/demo/rollout.jsonl"), n=32, expert="oracle", policy=None, rho=1.0, k=3, turns=6,
            temperature=1.0, seed=0, cache_dir=cache_dir, verbose=False)


def main() -> None:  # pragma: no cover
    app()
