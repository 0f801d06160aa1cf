"""The rollout dump: one JSON object per episode, self-describing enough to decode.

Each record carries the exact token record (prompt ids, completion ids, loss mask,
sampler log-probs), the turn records, the reward, and the paths of the model and
tokenizer that produced it, so anyone can decode the ids and check the mask. The format is
documented in docs/dump-format.md; `DumpRecord` is its executable definition, and
`validate_file` checks a file against it (the invariants as well as the types).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eapo.types import Episode

FORMAT = "eapo.rollout/1"


class CallRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    member: int
    expert: str
    accepted: bool
    reason: str
    rho: float = Field(ge=0, le=1)
    draw: float = Field(ge=0, lt=1)
    reply: str
    latency_s: float = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class TurnRecordModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0)
    action: str
    policy_tokens: int = Field(ge=0)
    observation_tokens: int = Field(ge=0)
    untrained_tokens: int = Field(default=0, ge=0)
    queries: list[str]
    dropped_queries: int = Field(ge=0)
    calls: list[CallRecord]
    notice: str | None
    issues: list[str]


class DumpRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str
    uid: str
    problem_id: str
    question: str
    gold: str | None
    step: int
    model_path: str
    tokenizer_path: str
    prompt_ids: list[int]
    completion_ids: list[int]
    loss_mask: list[int]
    logprobs: list[float]
    text: str  # the decoded completion, policy and observations together
    policy_text: str  # decoded mask-1 tokens only
    turns: list[TurnRecordModel]
    answer: str | None
    well_formed: bool
    stop_reason: str
    score: float = Field(ge=0, le=1)
    penalty: float = Field(ge=0)
    reward: float

    @model_validator(mode="after")
    def _check(self) -> "DumpRecord":
        n = len(self.completion_ids)
        if not (n == len(self.loss_mask) == len(self.logprobs)):
            raise ValueError(f"lengths differ: ids {n}, mask {len(self.loss_mask)}, logprobs {len(self.logprobs)}")
        if any(m not in (0, 1) for m in self.loss_mask):
            raise ValueError("loss_mask holds values other than 0 and 1")
        if any(lp != 0.0 for lp, m in zip(self.logprobs, self.loss_mask) if m == 0):
            raise ValueError("observation tokens must carry log-prob 0.0")
        if sum(t.policy_tokens - t.untrained_tokens for t in self.turns) != sum(self.loss_mask):
            raise ValueError("turn policy_tokens do not add up to the mask-1 tokens")
        if self.format != FORMAT:
            raise ValueError(f"format must be {FORMAT!r}, got {self.format!r}")
        return self


def episode_record(ep: Episode, tokenizer: Any, question: str, model_path: str, tokenizer_path: str) -> dict[str, Any]:
    data = ep.to_dict()
    policy = [t for t, m in zip(ep.completion_ids, ep.loss_mask) if m]
    record = {
        "format": FORMAT,
        "uid": ep.uid,
        "problem_id": ep.problem_id,
        "question": question,
        "gold": ep.gold,
        "step": int(ep.meta.get("step", 0)),
        "model_path": str(model_path),
        "tokenizer_path": str(tokenizer_path),
        "prompt_ids": ep.prompt_ids,
        "completion_ids": ep.completion_ids,
        "loss_mask": ep.loss_mask,
        "logprobs": ep.logprobs,
        "text": tokenizer.decode(ep.completion_ids, skip_special_tokens=False),
        "policy_text": tokenizer.decode(policy, skip_special_tokens=False),
        "turns": data["turns"],
        "answer": ep.answer,
        "well_formed": ep.well_formed,
        "stop_reason": ep.stop_reason or "",
        "score": ep.score,
        "penalty": ep.penalty,
        "reward": ep.reward,
    }
    DumpRecord.model_validate(record)  # never write a record the format rejects
    return record


def write_jsonl(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Write atomically: a crash mid-write leaves the previous file, not half of a new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def validate_file(path: str | Path) -> int:
    """Validate every line; returns the number of records, raises ValueError naming the line."""
    n = 0
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                DumpRecord.model_validate_json(line)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
            n += 1
    return n
