"""Metric back-ends and the logging callbacks, without training: what each back-end stores
is read back with that back-end's own reader; TRL's names arrive renamed; a back-end that
cannot start closes the others; the config refuses what cannot work."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from eapo.config import ConfigError, load_config
from eapo.training.callbacks import MetricsLogger, PeriodicEval, Progress
from eapo.training.config import LoggingConfig, TrainConfig
from eapo.training.tracking import SINKS, JsonlSink, SinkContext, _stable_id, open_sinks


def state(step: int = 1, max_steps: int = 10, zero: bool = True) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=zero)


class Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[dict, int]] = []
        self.closed = False

    def log(self, metrics, step):
        self.rows.append((dict(metrics), step))

    def close(self):
        self.closed = True


def trl_logs() -> dict:
    return {"loss": 0.5, "grad_norm": 1.5, "reward": 0.2, "reward/mean": 0.25, "frac_reward_zero_std": 0.75,
            "step_time": 0.4, "completions/mean_length": 30.0, "expert/consult_rate": 0.5, "epoch": 0.1}


def test_metrics_logger_renames_trl_metrics_and_times_steps(monkeypatch):
    rec = Recorder()
    logger = MetricsLogger([rec])
    clock = iter([10.0, 10.5, 11.0, 12.0])
    monkeypatch.setattr("eapo.training.callbacks.time.perf_counter", lambda: next(clock))
    for _ in range(2):
        logger.on_step_begin(None, state(), None)
        logger.on_step_end(None, state(), None)
    logger.on_log(None, state(step=2), None, logs=trl_logs())
    [(row, step)] = rec.rows
    assert step == 2
    assert row == {"loss/policy": 0.5, "loss/grad_norm": 1.5, "reward/mean": 0.25, "reward/frac_zero_std": 0.75,
                   "time/step_s": 0.4, "rollout/completions/mean_length": 30.0, "expert/consult_rate": 0.5,
                   "time/epoch": 0.1, "time/step_wall_s": pytest.approx(0.75)}  # (0.5 + 1.0) / 2
    logger.on_log(None, state(step=2, zero=False), None, logs=trl_logs())  # other processes write nothing
    assert len(rec.rows) == 1


def test_periodic_eval_publishes_validation_to_the_back_ends(tmp_path):
    published = []
    cb = PeriodicEval(5, lambda step: {"eval/avg@n": step / 100}, tmp_path / "val.jsonl",
                      publish=lambda m, s: published.append((m, s)))
    for step in range(1, 11):
        cb.on_step_end(None, state(step=step, max_steps=10), None)
    assert published == [({"eval/avg@n": 0.05}, 5), ({"eval/avg@n": 0.1}, 10)]
    assert [json.loads(x)["step"] for x in (tmp_path / "val.jsonl").read_text().splitlines()] == [5, 10]


def test_progress_callback_notes_the_watched_figures_in_log_lines(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="eapo.progress")
    cb = Progress("eapo seed 0", live=False, log_every_s=0)
    cb.on_train_begin(None, state(step=0, max_steps=4), None)
    cb.on_step_end(None, state(step=1, max_steps=4), None)  # TRL's order: step end, then the log event
    cb.on_log(None, state(step=1, max_steps=4), None, logs=trl_logs())
    cb.on_train_end(None, state(step=4, max_steps=4), None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("eapo seed 0: 0/4 (0%)")
    assert lines[-1].startswith("eapo seed 0: 1/4 (25%)") and "ETA" in lines[-1]
    assert lines[-1].endswith("| reward=0.25 consult=0.5 zero-var=0.75")  # TRL's names, read as renamed


def test_jsonl_sink_appends_rows_with_step_and_wall_time(tmp_path):
    sink = JsonlSink(tmp_path / "metrics.jsonl")
    sink.log({"reward/mean": 0.5}, 3)
    sink.log({"eval/avg@n": 0.25}, 3)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r.get("reward/mean"), r.get("eval/avg@n")) for r in rows] == [(3, 0.5, None), (3, None, 0.25)]
    assert all(r["wall_s"] >= 0 for r in rows)


def test_a_back_end_that_cannot_start_closes_the_others(tmp_path, monkeypatch):
    opened = []

    def failing(ctx):
        raise OSError("disk full")

    real_get = SINKS.get
    monkeypatch.setattr(SINKS, "get", lambda name: failing if name == "broken" else real_get(name))
    monkeypatch.setattr("eapo.training.tracking.JsonlSink.close", lambda self: opened.append("closed"))
    with pytest.raises(RuntimeError, match="logging back-end 'broken' could not start: OSError: disk full"):
        open_sinks(("broken",), SinkContext(run_dir=tmp_path, run_name="r"))
    assert opened == ["closed"]


def test_tensorboard_sink_writes_scalars_tensorboard_reads(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [jsonl, tb] = open_sinks(("tensorboard",), SinkContext(run_dir=tmp_path, run_name="r", config={"seed": 3}))
    for step in (1, 2):
        tb.log({"reward/mean": step / 4, "note": "text is skipped", "bad": float("nan")}, step)
    tb.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert acc.Tags()["scalars"] == ["reward/mean"]
    assert [(e.step, e.value) for e in acc.Scalars("reward/mean")] == [(1, 0.25), (2, 0.5)]


def test_wandb_offline_needs_no_network(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb not installed (pip install 'eapo[tracking]')")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there: any request would fail
    ctx = SinkContext(run_dir=tmp_path, run_name="cmp/eapo", project="eapo-test", group="cmp", config={"seed": 3},
                      wandb_mode="offline")
    sink = SINKS.get("wandb")(ctx)
    for step in (1, 2, 3):
        sink.log({"reward/mean": step / 10, "eval/avg@n": 0.5}, step)
    sink.close()
    assert wandb.run is None  # finished
    # one offline run under RUN/wandb, its id stable for the run folder (a resume appends to it);
    # the records file is wandb's own binary log: check it holds the metric names
    [run_dir] = (tmp_path / "wandb").glob("offline-run-*")
    [records] = run_dir.glob("run-*.wandb")
    assert records.name == f"run-{_stable_id(ctx)}.wandb"
    data = records.read_bytes()
    assert b"reward/mean" in data and b"eval/avg@n" in data


def test_trackio_stores_locally(tmp_path):
    pytest.importorskip("trackio", reason="trackio not installed (pip install 'eapo[tracking]')")
    # trackio reads TRACKIO_DIR when it is imported: a fresh interpreter keeps this test's
    # store out of the user's cache and independent of other tests.
    script = textwrap.dedent(f"""
        from pathlib import Path
        from eapo.training.tracking import SINKS, SinkContext
        sink = SINKS.get("trackio")(SinkContext(run_dir=Path({str(tmp_path)!r}), run_name="cmp-eapo",
                                                project="eapo-test", config={{"seed": 3}}))
        for step in (1, 2, 3):
            sink.log({{"reward/mean": step / 10}}, step)
        sink.close()
        from trackio.sqlite_storage import SQLiteStorage
        logs = SQLiteStorage.get_logs("eapo-test", "cmp-eapo")
        print([(r["step"], r["reward/mean"]) for r in logs])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "TRACKIO_DIR": str(tmp_path / "trackio")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[(1, 0.1), (2, 0.2), (3, 0.3)]"


def test_logging_config_validation(monkeypatch):
    assert TrainConfig().logging == LoggingConfig()
    with pytest.raises(ConfigError, match="logging.backends must be one of tensorboard, wandb, trackio, got 'mlflow'"):
        load_config(TrainConfig, None, ["logging.backends=[mlflow]"])
    with pytest.raises(ValueError, match="lists a back-end twice"):
        LoggingConfig(backends=("tensorboard", "tensorboard"))
    with pytest.raises(ValueError, match="wandb_mode must be one of offline, online"):
        LoggingConfig(wandb_mode="cloud")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"lists wandb but the package is not installed: pip install wandb"):
        LoggingConfig(backends=("wandb",))
    with pytest.raises(ConfigError, match=r"rl.trl.report_to is set by this config; set logging.backends instead"):
        load_config(TrainConfig, None, ["rl.trl={report_to: wandb}"])
