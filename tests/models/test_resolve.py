"""`check_model`: what a model argument may be, decided without loading anything."""

from __future__ import annotations

import pytest

from eapo.models import resolve
from eapo.models.resolve import ModelArgumentError, check_model


@pytest.fixture
def hub(monkeypatch):
    """The hub as seen from here: nothing cached unless said, every request recorded."""
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "model_info", lambda repo_id, **kw: calls.append((repo_id, kw)))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo_id, filename: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return calls


def test_a_folder_is_taken_as_given_and_a_tilde_is_expanded(tmp_path, monkeypatch, hub):
    assert check_model(str(tmp_path)) == str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m").mkdir()
    assert check_model("~/m") == str(tmp_path / "m")
    assert hub == []


def test_a_file_is_not_a_model_folder(tmp_path, hub):
    (tmp_path / "w.bin").write_bytes(b"")
    with pytest.raises(ModelArgumentError, match=r"^not a model folder: .*w\.bin \(a file; --policy takes"):
        check_model(str(tmp_path / "w.bin"), option="--policy")


def test_a_name_that_is_no_hub_id_is_refused_without_asking(hub):
    with pytest.raises(ModelArgumentError, match="^no such model folder, and not a hub id: a b$"):
        check_model("a b")
    assert hub == []


def test_a_cached_hub_id_needs_no_request(monkeypatch, hub):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo_id, filename: "/cache/config.json")
    assert check_model("org/name") == "org/name"
    assert hub == []


def test_a_reachable_hub_id_costs_one_request_with_a_timeout(hub):
    assert check_model("org/name") == "org/name"
    assert hub == [("org/name", {"timeout": resolve.HUB_TIMEOUT_S})]
