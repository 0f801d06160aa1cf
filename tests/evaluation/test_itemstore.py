"""The resumable output folder (eapo.evaluation.itemstore): what survives a crash, what is
refused, and that nothing is dropped silently except a half-written last line."""

from __future__ import annotations

import json

import pytest

from eapo.evaluation.itemstore import ItemStore, ResumeError

IDENT = {"model": "m", "n": 2}


def _lines(*recs):
    return "".join(json.dumps(r) + "\n" for r in recs)


def test_new_folder_writes_the_config_and_reads_back_appends(tmp_path):
    store = ItemStore(tmp_path / "o", IDENT)
    assert store.open() == []
    assert json.loads((tmp_path / "o" / "eval_config.json").read_text()) == IDENT
    store.append([{"id": "a"}, {"id": "b"}])
    store.append([])
    assert ItemStore(tmp_path / "o", IDENT).open() == [{"id": "a"}, {"id": "b"}]


@pytest.mark.parametrize("tail", ['{"id": "c", "sco', '{"id": "c"}', "\x00\x00\x00\n", '[1, 2]\n'])
def test_half_written_last_line_is_dropped(tmp_path, tail):
    store = ItemStore(tmp_path, IDENT)
    store.open()
    (tmp_path / "items.jsonl").write_text(_lines({"id": "a"}) + tail)
    again = ItemStore(tmp_path, IDENT)
    # a whole last line ({"id": "c"} with no newline) is still unconfirmed: the write was cut
    assert again.open() == [{"id": "a"}] and again.dropped_torn_line


def test_corrupt_line_before_the_end_is_an_error(tmp_path):
    ItemStore(tmp_path, IDENT).open()
    (tmp_path / "items.jsonl").write_text(_lines({"id": "a"}) + "not json\n" + _lines({"id": "b"}))
    with pytest.raises(ResumeError, match=r"items.jsonl:2: corrupt line"):
        ItemStore(tmp_path, IDENT).open()


def test_items_without_a_config_are_refused_unless_overwritten(tmp_path):
    (tmp_path / "items.jsonl").write_text(_lines({"id": "old"}))
    with pytest.raises(ResumeError, match="eval_config.json does not"):
        ItemStore(tmp_path, IDENT).open()
    assert ItemStore(tmp_path, IDENT).open(overwrite=True) == []
    assert not (tmp_path / "items.jsonl").exists()


def test_other_configuration_is_refused_with_the_differences(tmp_path):
    ItemStore(tmp_path, IDENT).open()
    with pytest.raises(ResumeError, match=r"model: \"m\" -> \"x\"; n: 2 -> 3"):
        ItemStore(tmp_path, {"model": "x", "n": 3}).open()
    assert ItemStore(tmp_path, {"model": "x", "n": 3}).open(overwrite=True) == []


def test_rewrite_keeps_exactly_the_given_records(tmp_path):
    store = ItemStore(tmp_path, IDENT)
    store.open()
    store.append([{"id": "a"}, {"id": "b"}, {"id": "c"}])
    store.rewrite([{"id": "a"}])
    assert (tmp_path / "items.jsonl").read_text() == _lines({"id": "a"})
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
