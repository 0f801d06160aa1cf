"""`eapo report RUN_DIR [RUN_DIR ...] [--out DIR]`: plots and one HTML page from run folders.

Parses, calls `eapo.reporting.report.build_report`, prints where the files went."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from eapo.cli._common import output_console


def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of `eapo train` / `eapo compare` (or results.json files); several are overlaid.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: RUN_DIR/report for one folder, ./report for several).")] = None,
    max_episodes: Annotated[int, typer.Option(help="Episodes per run in the trajectory viewer (taken evenly across dumped steps); 0: none.")] = 2000,
    title: Annotated[str, typer.Option(help="Title of the page.")] = "EAPO report",
) -> None:
    """PNG plots (reward, expert-free accuracy, consults, acceptance, turns, tokens, zero-variance
    groups, step time) and one self-contained HTML page with results and a trajectory viewer."""
    from eapo.reporting.report import build_report

    console = output_console()
    if out is None:
        out = runs[0] / "report" if len(runs) == 1 and runs[0].is_dir() else Path("report")
    try:
        res = build_report(runs, out, max_episodes_per_run=max_episodes, title=title)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"{res.runs} run(s), {res.results_tables} results table(s), {res.episodes} episodes")
    console.print(f"plots: {len(res.plots)} PNG files in {out}")
    console.print(f"page:  {res.html}")
