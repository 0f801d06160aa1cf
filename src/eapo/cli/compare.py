"""`eapo compare [CONFIG] [--seeds 3] [--rows ...]`: parses, calls `eapo.comparison.compare`, prints."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from eapo.cli._common import output_console, setup_logging


def _seeds(text: str) -> list[int]:
    """"3" -> seeds 0, 1, 2; "0,4,7" -> those seeds."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise typer.BadParameter(f"--seeds takes a count (3) or a list (0,1,2), got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise typer.BadParameter(f"--seeds must name at least one distinct seed >= 0, got {text!r}")
    return seeds


def compare(
    config: Annotated[Optional[Path], typer.Argument(help="YAML configuration (default: the built-in comparison).")] = None,
    seeds: Annotated[str, typer.Option(help="Number of seeds (3 = seeds 0,1,2) or a comma-separated list.")] = "3",
    rows: Annotated[Optional[str], typer.Option(help="Comma-separated rows (default: all). See --list-rows.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder; finished cells in it are reused.")] = Path("runs/compare"),
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set rl.steps=100 (repeatable).")] = None,
    quick: Annotated[bool, typer.Option(help="A short comparison (about 10 minutes on 2 CPU cores).")] = False,
    jobs: Annotated[int, typer.Option(help="Cells run at once, each in its own process.")] = 1,
    model: Annotated[Optional[str], typer.Option(help="Starting policy: a local folder or hub id (skips the tiny warm start).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Cache of tiny models and warm starts.")] = None,
    list_rows: Annotated[bool, typer.Option("--list-rows", help="List the known rows and exit.")] = False,
    no_run: Annotated[bool, typer.Option("--no-run", help="Train nothing: write results.json, the table and plots from the cells already finished in --out.")] = False,
    verbose: bool = False,
) -> None:
    """Baselines and ablations from one starting policy, same updates, expert-free table + plots."""
    from eapo.comparison import DEFAULT_ROWS, ROWS
    from eapo.comparison.settings import COMPARE_DEFAULTS, COMPARE_QUICK

    console = output_console()  # off a terminal the many-column table is never wrapped
    if list_rows:
        for name in [*DEFAULT_ROWS, *[n for n in ROWS.names() if n not in DEFAULT_ROWS]]:
            spec = ROWS.get(name)
            console.print(f"[bold]{name}[/bold] ({spec.kind}): {spec.label} — {spec.description}")
        return
    setup_logging(verbose)
    from eapo.comparison import compare as run
    from eapo.models.resolve import ModelArgumentError, check_model
    from eapo.schema import TrainConfig
    from eapo.typed_yaml import ConfigError, load_config

    if jobs < 1:
        raise typer.BadParameter("--jobs must be >= 1")
    seed_list = _seeds(seeds)
    row_list = [r.strip() for r in rows.split(",") if r.strip()] if rows else list(DEFAULT_ROWS)
    unknown = [r for r in row_list if r not in ROWS]
    if unknown or not row_list:
        console.print(f"[red]--rows:[/red] unknown row(s) {unknown}; known: {', '.join(ROWS.names())}")
        raise typer.Exit(2)
    # The built-in comparison (no CONFIG) is sized for 2 CPU cores; a user's file is taken as is.
    base = [] if config else list(COMPARE_DEFAULTS)
    overrides = base + (list(COMPARE_QUICK) if quick else []) + list(set_ or [])
    try:
        cfg = load_config(TrainConfig, str(config) if config else None, overrides)
    except (ConfigError, OSError) as e:
        console.print(f"[red]configuration error:[/red] {e}")
        raise typer.Exit(2) from None
    try:  # before any cell starts or model loads (--no-run loads none)
        if no_run:
            pass
        elif model:
            model = check_model(model)
        elif cfg.model.policy:
            check_model(cfg.model.policy, option="model.policy")
        if not no_run:
            from eapo.rollout.backends import check_backend

            check_backend(cfg.eval.backend, option="eval.backend")
    except ValueError as e:  # ModelArgumentError is one
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    command = "eapo compare " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else "eapo compare"
    try:
        results = run(cfg, out, rows=row_list, seeds=seed_list, model=model, cache_dir=cache_dir, jobs=jobs,
                      command=command, run=not no_run)
    except (FileExistsError, ValueError, OSError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    _print(console, results, out)


def _print(console: Console, results: dict, out: Path) -> None:
    n = results["config"]["eval"]["n"]
    table = Table(title=f"eapo compare: {len(results['seeds'])} seed(s) -> {out}/results.json")
    pass_keys = [k for k in (results["rows"][0]["metrics"] if results["rows"] else {}) if k.startswith("pass@")]
    for col in ["row", f"avg@{n}", *pass_keys, "greedy", "consult (train)", "expert tokens", "wall s"]:
        table.add_column(col, justify="left" if col == "row" else "right", no_wrap=col == "row")

    def cell(m: dict, scale: float = 100.0, digits: int = 1) -> str:
        if m.get("mean") is None or m["mean"] != m["mean"]:
            return "-"
        return f"{scale * m['mean']:.{digits}f} ± {scale * m['std']:.{digits}f}"

    for r in results["rows"]:
        m = r["metrics"]
        table.add_row(r["label"] + (" †" if r["evaluated_with_experts"] else ""), cell(m["avg@n"]),
                      *[cell(m[k]) for k in pass_keys], cell(m["greedy_acc"]), cell(m["consult_rate"], 1.0, 2),
                      cell(m["expert_tokens"], 1.0, 0), cell(m["wall_s"], 1.0, 0))
    console.print(table)
    p = results["paired"]
    if p["per_seed"]:
        console.print(f"paired {p['treatment']} − {p['baseline']} avg@{n}: {100 * p['mean']:+.2f} points "
                      f"(sd over seeds {100 * p['std']:.2f})")
    console.print("expert-free unless † (evaluated with experts). Table: "
                  f"{out}/results.md; plots: {out}/plots/")
