"""The report page: one self-contained HTML file (styles, script, images and data inline).

Nothing in the page refers to the network or to other files: plots are PNG data URIs, the
viewer's script and styles are inlined from `assets/`, and the episodes are a JSON block
that the script reads. The file can be mailed, attached to CI, or opened offline.

Every value from a run folder is escaped: Python side with `html.escape`, JSON with `</`
broken up so no text can close the data block, and the script inserts text nodes only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from eapo.reporting.plots import PLOTS
from eapo.reporting.runs import ReportInputs, ResultsTable

__all__ = ["render_html"]

_e = html.escape


def _asset(name: str) -> str:
    return resources.files("eapo.reporting").joinpath("assets", name).read_text(encoding="utf-8")


def fmt(x: float | None) -> str:
    """Compact number for tables.

    >>> [fmt(0.04512), fmt(3.14159), fmt(1234.5), fmt(None)]
    ['0.045', '3.14', '1234', '-']
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "metrics", attrs: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="{cls}"{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _results_table(table: ResultsTable, index: int) -> str:
    rows = []
    for name, cells in table.rows:
        row = [_e(name)]
        for col in table.columns:
            c = cells.get(col)
            if c is None:
                row.append("-")
                continue
            text = fmt(c.mean) + (f" ± {fmt(c.std)}" if c.std is not None else "")
            title = f' title="{len(c.values)} seeds: {_e(", ".join(fmt(v) for v in c.values))}"' if c.values else ""
            row.append(f"<span{title}>{_e(text)}</span>")
        rows.append(row)
    header = ["row"] + [c.removeprefix("eval/").removeprefix("test/eval/") for c in table.columns]
    return (f'<p class="source">from {_e(str(table.source))} (mean ± sd over seeds; hover for per-seed values)</p>'
            + _table(header, rows, attrs=f' id="results-table-{index}" data-source="results"'))


_RUN_COLUMNS = (("test avg@n", "eval/avg@n"), ("test greedy", "eval/greedy_acc"), ("test pass@1", "eval/pass@1"))
_TRAIN_COLUMNS = (("consult rate", "expert/consult_rate"), ("acceptance", "expert/acceptance_rate"),
                  ("zero-var groups", "reward/frac_zero_std"), ("reward", "reward/mean"))


def _runs_table(inputs: ReportInputs) -> str:
    extra_k = sorted({k for r in inputs.runs if r.test for k in r.test if k.startswith("eval/pass@") and k != "eval/pass@1"},
                     key=lambda k: int(k.split("@")[1]) if k.split("@")[1].isdigit() else 0)
    test_cols = list(_RUN_COLUMNS) + [(f"test {k.split('/')[1]}", k) for k in extra_k]
    header = ["run", "arm", "steps"] + [c for c, _ in test_cols] + [f"{c} (train mean)" for c, _ in _TRAIN_COLUMNS]
    rows = []
    for label, test in inputs.bases:
        rows.append([_e(label), "before RL", "0"] + [fmt(test.get(k)) for _, k in test_cols] + ["-"] * len(_TRAIN_COLUMNS))
    for run in inputs.runs:
        steps = run.series("reward/mean")[0] or run.series("loss/policy")[0]
        test = run.test or {}
        rows.append([_e(run.label), _e(run.arm or "-"), str(max(steps) if steps else 0)]
                    + [fmt(test.get(k)) for _, k in test_cols] + [fmt(run.mean(k)) for _, k in _TRAIN_COLUMNS])
    return _table(header, rows, attrs=' id="runs-table"')


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _json_block(obj: Any) -> str:
    # "</" inside a <script> block would end it early; "<\/" is the same JSON string.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def render_html(inputs: ReportInputs, plots: Mapping[str, Path], episodes: Sequence[dict[str, Any]], *,
                title: str = "EAPO report", sources: Sequence[str] = ()) -> str:
    """The page as a string. `plots` maps plot names (see `PLOTS`) to PNG files."""
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f"<p>{len(inputs.runs)} training run(s), {len(episodes)} episodes in the viewer; made {now} from "
        f"{_e(', '.join(sources) or '-')}</p>",
        '<nav><a href="#results">Results</a><a href="#plots">Training curves</a>'
        '<a href="#viewer">Trajectories</a></nav></header>',
        '<section id="results"><h2>Results</h2>',
    ]
    for i, table in enumerate(inputs.results):
        parts.append(f"<h3>Comparison {i + 1}</h3>" + _results_table(table, i))
    if inputs.runs or inputs.bases:
        parts.append("<h3>Runs</h3><p class=\"source\">Test columns are expert-free (EAPO.md §5); "
                     "train columns are means over logged training steps.</p>" + _runs_table(inputs))
    if not (inputs.results or inputs.runs or inputs.bases):
        parts.append('<p class="empty">No runs or results found.</p>')
    parts.append('</section><section id="plots"><h2>Training curves</h2><div class="plots">')
    for spec in PLOTS:
        if spec.name in plots:
            wide = ' class="wide"' if spec.panels > 1 else ""
            parts.append(f'<figure id="plot-{spec.name}"{wide}><img alt="{_e(spec.title)}" src="{_png_uri(plots[spec.name])}">'
                         f"<figcaption><b>{_e(spec.title)}.</b> {_e(spec.caption)}</figcaption></figure>")
    parts.append("</div></section>")
    parts.append(
        '<section id="viewer"><h2>Trajectories</h2>'
        '<p class="source">Episodes from the rollout dumps (rl.dump_rollouts_every). Select one to read it: what '
        "the policy wrote each turn, what it asked, which expert replies were accepted (green) or refused (red), "
        "and its final answer against the gold.</p>"
        '<div class="filters">'
        '<label>run<select id="f-run"></select></label>'
        '<label>step<select id="f-step"></select></label>'
        '<label>reward ≥<input id="f-rmin" type="number" step="0.1"></label>'
        '<label>reward ≤<input id="f-rmax" type="number" step="0.1"></label>'
        '<label>consulted<select id="f-consult"><option value="all">all</option>'
        '<option value="yes">consulted</option><option value="no">did not consult</option></select></label>'
        '<label>search<input id="f-text" type="search" placeholder="question, problem id, answer"></label>'
        "</div>"
        '<p id="ep-count"></p>'
        '<div class="viewer-grid"><div class="list"><table id="ep-table"><thead><tr><th>run</th><th>step</th>'
        "<th>question</th><th>reward</th><th>answer / gold</th><th>turns</th><th>consults</th>"
        '<th title="expert replies accepted / refused">acc / ref</th></tr></thead><tbody id="ep-rows"></tbody></table>'
        '<button id="ep-more" type="button">show more</button></div>'
        '<div id="ep-detail" class="detail"><p class="empty">Select an episode on the left.</p></div></div>'
        "</section>"
    )
    data = {"runs": [r.label for r in inputs.runs], "episodes": list(episodes)}
    parts.append(f'<script id="eapo-data" type="application/json">{_json_block(data)}</script>')
    parts.append(f"<script>{_asset('viewer.js')}</script></body></html>")
    return "\n".join(parts)
