"""`eapo rollout` end to end on the tiny models: runs, writes a dump that validates, and
the records decode back through the tokenizer folder they name."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.rollout.dump import validate_file


@pytest.mark.slow
def test_rollout_command_writes_a_valid_dump(tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(app, ["rollout", "--out", str(out), "--n", "8", "--cache-dir", str(tmp_path / "cache"),
                                   "--turns", "3"])
    assert res.exit_code == 0, res.output
    assert validate_file(out) == 8
    rec = json.loads(out.read_text().splitlines()[0])
    tok = AutoTokenizer.from_pretrained(rec["tokenizer_path"])
    policy = [t for t, m in zip(rec["completion_ids"], rec["loss_mask"]) if m]
    assert tok.decode(policy, skip_special_tokens=False) == rec["policy_text"]


def test_validate_dump_rejects_a_broken_record(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"format": "eapo.rollout/1", "uid": "x"}) + "\n")
    res = CliRunner().invoke(app, ["validate-dump", str(bad)])
    assert res.exit_code == 1 and "invalid" in res.output
