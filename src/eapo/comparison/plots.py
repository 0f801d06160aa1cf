"""The comparison's figures (PNG), drawn from `results.json` alone.

Drawing from the results document rather than from run folders means a committed
`results.json` can be re-plotted anywhere, and the plots can never disagree with the table.
Bands are ± one standard deviation over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

PLOTS = ("val_accuracy_vs_updates.png", "val_accuracy_vs_expert_tokens.png", "consult_and_acceptance.png")


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_all(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Writes the three figures into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_vs_updates(results, out_dir / PLOTS[0]), _vs_tokens(results, out_dir / PLOTS[1]),
            _consult(results, out_dir / PLOTS[2])]


def _band(ax: Any, x: list[float], curve: dict[str, list[float]], label: str) -> None:
    """The mean in % as a line, with a ± 1 sd band over seeds."""
    mean = [100 * v for v in curve["mean"]]
    sd = [100 * v for v in curve["std"]]
    line, = ax.plot(x, mean, marker="o", markersize=3, label=label)
    ax.fill_between(x, [a - b for a, b in zip(mean, sd)], [a + b for a, b in zip(mean, sd)], alpha=0.15,
                    color=line.get_color())


def _finish(ax: Any, fig: Any, plt: Any, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _n(results: dict[str, Any]) -> Any:
    return results.get("config", {}).get("eval", {}).get("n", "n")


def _vs_updates(results: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results["rows"]:
        c = r["curves"]["avg@n"]
        if r["kind"] == "eval":
            m = r["metrics"]["avg@n"]["mean"]
            if not math.isnan(m):
                ax.axhline(100 * m, linestyle="--", linewidth=1,
                           label=r["label"] + (" (with experts, test)" if r["evaluated_with_experts"] else " (test)"),
                           color="black" if not r["evaluated_with_experts"] else "grey")
            continue
        if c["steps"]:
            _band(ax, c["steps"], c, r["label"])
    return _finish(ax, fig, plt, path, "policy updates", f"expert-free validation avg@{_n(results)} (%)",
                   "Expert-free validation accuracy during training")


def _vs_tokens(results: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results["rows"]:
        c = r["curves"]["avg@n"]
        if r["kind"] == "eval" or not c["steps"]:
            continue
        _band(ax, r["curves"]["expert_tokens"]["mean"], c, r["label"])
    ax.set_xscale("symlog", linthresh=100)
    return _finish(ax, fig, plt, path, "expert tokens spent in training (cumulative, symlog)",
                   f"expert-free validation avg@{_n(results)} (%)", "Accuracy against the expert budget")


def _consult(results: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    keys = (("expert/consult_rate", "consult rate"), ("expert/acceptance_rate", "acceptance rate"),
            ("reward/frac_zero_std", "zero-variance groups"))
    for r in results["rows"]:
        t = r["curves"].get("training")
        if not t:
            continue
        for ax, (k, _) in zip(axes, keys):
            if r["name"] == "self_rl" and k != "reward/frac_zero_std":
                continue  # self-RL neither consults nor is accepted: a flat zero adds nothing
            ax.plot(t["steps"], t[k], label=r["label"], linewidth=1.2, marker="o", markersize=2)
    for ax, (_, title) in zip(axes, keys):
        ax.set_title(title)
        ax.set_xlabel("policy updates")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Consulting during training (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
