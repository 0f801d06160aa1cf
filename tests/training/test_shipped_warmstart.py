"""The shipped default warm start (`eapo.assets`): used only for its own key, copied only
when its files match their recorded sha256, never left half-copied, and reproduced
bit-for-bit by the project's recipe (`-m rebuild`: trains it, ~8 minutes on 2 cores; CI
runs it as a step of its own)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

import eapo.training.warmstart as ws
from eapo.training.warmstart import shipped_warm_start, warm_starts_dir
from eapo.models.build import ensure_tiny_models
from eapo.training.config import TrainConfig
from eapo.assembly.run import build_task


@pytest.fixture(scope="module")
def default_key(tmp_path_factory):
    cfg = TrainConfig()
    tiny = ensure_tiny_models(tmp_path_factory.mktemp("cache"))["policy"]
    return tiny, ws.warm_start_key(tiny, build_task(cfg), cfg.warmstart)


def test_the_default_configuration_maps_to_the_shipped_warm_start(default_key):
    _, key = default_key
    shipped = sorted(p.name for p in warm_starts_dir().glob("warmstart-*"))
    assert shipped == [f"warmstart-{key}"], (
        f"the default warm start's key is now {key}, the shipped one is {shipped}: a deliberate change to the "
        "recipe, the tiny model or the task needs `python -m eapo.assets.rebuild` (and the results re-measured)")
    record = json.loads((shipped_warm_start(key) / ws.MARKER_FILE).read_text())
    assert record["key"] == key and "model.safetensors" in record["files"]


def test_a_fresh_cache_gets_the_shipped_copy_without_training(default_key, tmp_path, monkeypatch):
    tiny, key = default_key
    monkeypatch.setattr(ws, "_train", lambda *a, **k: pytest.fail("trained although the shipped one fits"))
    cfg = TrainConfig()
    folder = ws.warm_start(tiny, tmp_path / "warmstarts", build_task(cfg), cfg.warmstart)
    assert folder.name == f"warmstart-{key}"
    assert ws.file_digests(folder) == json.loads((shipped_warm_start(key) / ws.MARKER_FILE).read_text())["files"]
    assert ws.warm_start(tiny, tmp_path / "warmstarts", build_task(cfg), cfg.warmstart) == folder  # cached now
    from eapo.models.build import load_policy

    load_policy(folder)  # a complete model folder


def test_a_damaged_shipped_copy_is_refused_and_leaves_nothing(default_key, tmp_path, monkeypatch):
    tiny, key = default_key
    bad = tmp_path / "shipped" / f"warmstart-{key}"
    shutil.copytree(shipped_warm_start(key), bad)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(ws, "shipped_warm_start", lambda k: bad if k == key else None)
    cfg = TrainConfig()
    with pytest.raises(ws.ShippedWarmStartError, match=r"model\.safetensors.*sha256"):
        ws.warm_start(tiny, tmp_path / "warmstarts", build_task(cfg), cfg.warmstart)
    assert list((tmp_path / "warmstarts").iterdir()) == []  # no half-copied folder


def test_another_recipe_trains_its_own(default_key, tmp_path, monkeypatch):
    tiny, key = default_key
    cfg = TrainConfig()
    small = dataclasses.replace(cfg.warmstart, steps=2, batch_size=2)
    assert ws.warm_start_key(tiny, build_task(cfg), small) != key
    trained = []
    real = ws._train
    monkeypatch.setattr(ws, "_train", lambda *a, **k: trained.append(1) or real(*a, **k))
    folder = ws.warm_start(tiny, tmp_path / "warmstarts", build_task(cfg), small)
    assert trained == [1] and folder.name != f"warmstart-{key}"
    record = json.loads((folder / ws.MARKER_FILE).read_text())
    assert record["files"] == ws.file_digests(folder)  # a trained one records its files too


@pytest.mark.rebuild
def test_the_recipe_rebuilds_the_shipped_warm_start_bit_for_bit(capsys):
    from eapo.assets.rebuild import main

    assert main(["--check"]) == 0, capsys.readouterr().out
