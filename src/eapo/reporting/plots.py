"""The report's plots: one PNG per figure a user judges an EAPO run by, runs overlaid.

Each plot is a `PlotSpec` in `PLOTS` (name -> title and a function that draws it on a
matplotlib `Figure`). Every plot is always written, also when no run has its metric (the
self-exploratory arm never consults, old runs lack the time breakdown): it then says so
in the picture, so the page never has holes and a missing metric is visible.

Uses matplotlib's object API (`Figure`, no pyplot): no global figure state, no display
back-end, safe in threads and on machines without a screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from eapo.reporting.runs import ReportInputs, RunData

__all__ = ["PLOTS", "PlotSpec", "render_plots"]

STEP_LABEL = "policy update (training step)"


@dataclass(frozen=True)
class PlotSpec:
    name: str
    title: str
    caption: str
    draw: Callable[[Figure, ReportInputs, Sequence[str]], None]
    panels: int = 1


def _color(i: int) -> str:
    return f"C{i % 10}"


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in these runs", ha="center", va="center", transform=ax.transAxes, color="0.4")


def _lines(ax: Axes, runs: Sequence[RunData], key: str, *, ylabel: str, what: str, style: str = "-",
           label_suffix: str = "", legend: bool = True, val: bool = False) -> bool:
    drawn = False
    for i, run in enumerate(runs):
        steps, values = run.val_series(key) if val else run.series(key)
        if not steps:
            continue
        ax.plot(steps, values, style, color=_color(i), marker="o" if len(steps) < 30 else None, markersize=3,
                label=run.label + label_suffix)
        drawn = True
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if not drawn:
        _no_data(ax, what)
    elif legend:
        ax.legend(fontsize=8)
    return drawn


def _single(key: str, ylabel: str, what: str, *, ylim: tuple[float, float] | None = None):
    def draw(fig: Figure, inputs: ReportInputs, _: Sequence[str]) -> None:
        ax = fig.subplots()
        _lines(ax, inputs.runs, key, ylabel=ylabel, what=what)
        if ylim:
            ax.set_ylim(*ylim)
    return draw


def _reward(fig: Figure, inputs: ReportInputs, _: Sequence[str]) -> None:
    left, right = fig.subplots(1, 2)
    _lines(left, inputs.runs, "reward/mean", ylabel="mean reward (EAPO.md §3)", what="reward")
    left.set_title("reward", fontsize=10)
    _lines(right, inputs.runs, "reward/accuracy", ylabel="score (with expert help)", what="training accuracy")
    right.set_title("training accuracy (help allowed)", fontsize=10)


def _accuracy(fig: Figure, inputs: ReportInputs, _: Sequence[str]) -> None:
    ax = fig.subplots()
    drawn = False
    for i, run in enumerate(inputs.runs):
        steps, values = run.val_series("eval/avg@n")
        if steps:
            ax.plot(steps, values, "-o", color=_color(i), markersize=4, label=f"{run.label} avg@n (val)")
            drawn = True
        gsteps, gvalues = run.val_series("eval/greedy_acc")
        if gsteps:
            ax.plot(gsteps, gvalues, ":", color=_color(i), label=f"{run.label} greedy (val)")
            drawn = True
        if run.test and "eval/avg@n" in run.test:
            last = max(steps + run.series("reward/mean")[0] or [0])
            ax.plot([last], [run.test["eval/avg@n"]], "X", color=_color(i), markersize=10,
                    label=f"{run.label} avg@n (test)")
            drawn = True
    for j, (label, test) in enumerate(inputs.bases):
        if "eval/avg@n" in test:
            ax.axhline(test["eval/avg@n"], color="0.3", linestyle="--", linewidth=1,
                       label=f"{label} avg@n (test, before RL)")
            drawn = True
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel("expert-free accuracy")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7)
    else:
        _no_data(ax, "expert-free evaluation")


def _acceptance(fig: Figure, inputs: ReportInputs, _: Sequence[str]) -> None:
    ax = fig.subplots()
    a = _lines(ax, inputs.runs, "schedule/rho_effective", ylabel="acceptance", what="acceptance",
               label_suffix=" rho_s (schedule)", legend=False)
    b = _lines(ax, inputs.runs, "expert/acceptance_rate", ylabel="acceptance", what="acceptance", style="--",
               label_suffix=" accepted share (observed)", legend=False)
    ax.set_ylim(-0.05, 1.05)
    if a or b:
        ax.legend(fontsize=7)


def _tokens(fig: Figure, inputs: ReportInputs, _: Sequence[str]) -> None:
    left, right = fig.subplots(1, 2)
    _lines(left, inputs.runs, "rollout/policy_tokens", ylabel="tokens per episode", what="policy tokens")
    left.set_title("policy tokens (mask 1)", fontsize=10)
    _lines(right, inputs.runs, "expert/completion_tokens", ylabel="tokens per step", what="expert tokens")
    right.set_title("expert reply tokens", fontsize=10)


# (label, how to get seconds per step from a run); "rest of rollout" and "update" are differences.
def _time_parts(run: RunData) -> dict[str, float] | None:
    step, rollout = run.mean("time/step_s"), run.mean("time/rollout_s")
    gen, wait, wall = run.mean("time/generation_s"), run.mean("time/expert_wait_s"), run.mean("time/step_wall_s")
    if step is None and rollout is None:
        return None
    parts: dict[str, float] = {}
    if rollout is not None:
        parts["generation"] = gen or 0.0
        parts["expert wait"] = wait or 0.0
        parts["rest of rollout"] = max(rollout - (gen or 0.0) - (wait or 0.0), 0.0)
    if step is not None:
        parts["log-probs, loss, backward (TRL)"] = max(step - (rollout or 0.0), 0.0)
    if wall is not None and step is not None:
        parts["optimiser and callbacks"] = max(wall - step, 0.0)
    return parts


def _step_time(fig: Figure, inputs: ReportInputs, _: Sequence[str]) -> None:
    ax = fig.subplots()
    rows = [(run.label, parts) for run in inputs.runs if (parts := _time_parts(run))]
    if not rows:
        ax.set_axis_off()
        _no_data(ax, "step timings")
        return
    names = ["generation", "expert wait", "rest of rollout", "log-probs, loss, backward (TRL)", "optimiser and callbacks"]
    for k, name in enumerate(names):
        lefts = [sum(p.get(n, 0.0) for n in names[:k]) for _, p in rows]
        widths = [p.get(name, 0.0) for _, p in rows]
        if any(widths):
            ax.barh(range(len(rows)), widths, left=lefts, color=f"C{k}", label=name)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per training step (mean over logged steps)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="lower right")


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("reward", "Reward", "Mean composite reward and training accuracy (expert help allowed) per logged step.",
             _reward, 2),
    PlotSpec("accuracy", "Expert-free accuracy",
             "avg@n on the validation split during training (dotted: greedy), final test as a cross, the policy "
             "before RL as a dashed line. No expert is consulted in these evaluations.", _accuracy),
    PlotSpec("consult_rate", "Consult rate", "Share of training episodes that asked an expert at least once.",
             _single("expert/consult_rate", "episodes that consulted", "consults", ylim=(-0.05, 1.05))),
    PlotSpec("acceptance", "Acceptance rho_s",
             "The schedule's acceptance rate (solid) and the share of replies actually accepted (dashed).",
             _acceptance),
    PlotSpec("turns", "Turns per episode", "Mean number of turns (generation calls) per training episode.",
             _single("rollout/turns", "turns per episode", "turn counts")),
    PlotSpec("tokens", "Policy and expert tokens",
             "Tokens the policy wrote per episode (the only ones in the loss) and expert reply tokens per step.",
             _tokens, 2),
    PlotSpec("zero_variance", "Zero-variance groups",
             "Share of groups whose rollouts all got the same reward: they give no gradient (EAPO.md §7).",
             _single("reward/frac_zero_std", "share of groups", "group statistics", ylim=(-0.05, 1.05))),
    PlotSpec("step_time", "Step time breakdown",
             "Where a training step's wall time goes, mean over logged steps.", _step_time),
)


def render_plots(inputs: ReportInputs, out_dir: Path, *, dpi: int = 110) -> dict[str, Path]:
    """Every plot of `PLOTS` as `out_dir/<name>.png`; returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [r.label for r in inputs.runs]
    paths: dict[str, Path] = {}
    for spec in PLOTS:
        fig = Figure(figsize=(6.4 * spec.panels if spec.panels > 1 else 7.0, 4.2), layout="constrained")
        spec.draw(fig, inputs, labels)
        fig.suptitle(spec.title)
        path = out_dir / f"{spec.name}.png"
        fig.savefig(path, dpi=dpi)
        paths[spec.name] = path
    return paths
