"""`eapo report`: run folders in, PNG plots and one self-contained HTML page out.

    report/
      reward.png accuracy.png consult_rate.png acceptance.png turns.png tokens.png
      zero_variance.png step_time.png       (one per entry of eapo.reporting.plots.PLOTS)
      report.html                           (all of the above inline, tables, trajectory viewer)

The page does not need the PNG files next to it; they are written for slides and docs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eapo.reporting.episodes import load_episodes
from eapo.reporting.html import render_html
from eapo.reporting.plots import render_plots
from eapo.reporting.runs import discover

log = logging.getLogger(__name__)

__all__ = ["ReportResult", "build_report"]


@dataclass(frozen=True)
class ReportResult:
    html: Path
    plots: dict[str, Path]
    runs: int
    results_tables: int
    episodes: int


def build_report(paths: Sequence[str | Path], out: str | Path, *, max_episodes_per_run: int = 2000,
                 title: str = "EAPO report") -> ReportResult:
    """Read the run folders (see `eapo.reporting.runs.discover`), write the plots and the page.

    Raises FileNotFoundError for a path that does not exist and ValueError when nothing
    under the paths is a run, a base evaluation or a results file."""
    if max_episodes_per_run < 0:
        raise ValueError(f"max_episodes_per_run must be >= 0, got {max_episodes_per_run}")
    inputs = discover(paths)
    if not (inputs.runs or inputs.bases or inputs.results):
        raise ValueError(f"no run folders (metrics.jsonl), evaluations (test.json) or results.json under "
                         f"{', '.join(str(p) for p in paths)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = render_plots(inputs, out)
    episodes = load_episodes([r.dumps for r in inputs.runs], max_per_run=max_episodes_per_run) \
        if max_episodes_per_run else []
    page = render_html(inputs, plots, episodes, title=title, sources=[str(p) for p in paths])
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    log.info("report: %d runs, %d episodes -> %s", len(inputs.runs), len(episodes), html_path)
    return ReportResult(html=html_path, plots=plots, runs=len(inputs.runs), results_tables=len(inputs.results),
                        episodes=len(episodes))
