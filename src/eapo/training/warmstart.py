"""Warm start: supervised fine-tuning of a policy on worked solutions of the built-in task.

Why: RL needs a policy that already writes the protocol (steps, consultations, answers) and
succeeds *sometimes*; a randomly initialised tiny model never earns a reward. The warm start
teaches the format and the arithmetic on chains of every length in `min_len..max_len`
(PILOT.md: a policy that never saw a length never writes that many steps), consulting each
step with probability `consult_prob` and seeing that consultation refused with probability
`refusal_prob` (after which it computes the step itself).

Why the exact engine layout: an example is `prompt_ids(tokenizer, question, None)` followed
by every piece of `ChainTask.solution_text` encoded on its own, exactly as the rollout
engine appends the policy's segments and its observations. So the warm-started policy sees
at RL time the very ids it was trained on (EAPO.md §8, token drift). Observation tokens
carry loss mask 0, as in RL.

Training is TRL's `SFTTrainer` on a pre-tokenized dataset: `input_ids` plus a per-token
`completion_mask` with `completion_only_loss=True`. TRL 1.16 turns that mask into `labels`
token by token (`-100` wherever the mask is 0), so zeros in the middle of a sequence, on
observation tokens, are honoured (a test checks the labels it built).

Cached and atomic: the result folder is named by a hash of the source policy, the task and
the config; a finished folder carries `eapo_warmstart.json` (written last), and a build goes
into a temporary folder that is renamed into place, so concurrent callers and killed runs
never leave a half-written model that looks complete.

Not covered: warm starts on other tasks (any task with a `solution_text` could reuse
`build_examples`), LoRA.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import shutil
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from eapo.protocol.prompt import prompt_ids
from eapo.protocol.tags import Tags
from eapo.schema import WarmStartConfig
from eapo.tasks.arithmetic import ChainTask, chain_steps
from eapo.training.compat import no_activation_checkpointing

logger = logging.getLogger(__name__)

MARKER_FILE = "eapo_warmstart.json"
# Bump when the examples or the training recipe change for the same config: every cached
# warm start is then rebuilt.
FORMAT_VERSION = 2


# --------------------------------------------------------------------------- examples


def encode_pieces(tokenizer: Any, question: str, pieces: list[tuple[str, bool]]) -> tuple[list[int], list[int], int]:
    """`(input_ids, completion_mask, prompt_len)` in the rollout engine's layout: the prompt
    (no system text), then each piece encoded on its own; mask 1 on policy pieces only."""
    ids = prompt_ids(tokenizer, question, None)
    prompt_len = len(ids)
    mask = [0] * prompt_len
    for text, is_policy in pieces:
        piece = list(tokenizer.encode(text, add_special_tokens=False))
        ids += piece
        mask += [1 if is_policy else 0] * len(piece)
    return ids, mask, prompt_len


def sample_pieces(question: str, rng: random.Random, cfg: WarmStartConfig, tags: Tags) -> list[tuple[str, bool]]:
    """One worked solution with consultations and refusals drawn per step."""
    n = len(chain_steps(question))
    consult = frozenset(i for i in range(n) if rng.random() < cfg.consult_prob)
    refused = frozenset(i for i in sorted(consult) if rng.random() < cfg.refusal_prob)
    slips: dict[int, int] = {}
    accepted = sorted(consult - refused)
    if cfg.slip_prob > 0 and accepted and rng.random() < cfg.slip_prob:
        own_before = [j for j in range(accepted[-1]) if j not in consult]
        if own_before:
            # a near miss, like the policy's own (docs/TASK.md): the true result off by 1..15
            j = rng.choice(own_before)
            slips[j] = chain_steps(question)[j][3] + rng.choice([d for d in range(-15, 16) if d])
    return ChainTask.solution_text(question, consult, refused_steps=refused, tags=tags, query=cfg.query, slips=slips,
                                   style=cfg.consult_style, bare_refusal=cfg.bare_refusal)


def build_examples(
    tokenizer: Any, task: ChainTask, cfg: WarmStartConfig, n: int, tags: Tags = Tags()
) -> list[dict[str, list[int]]]:
    """`n` examples `{"input_ids", "completion_mask"}` on fresh chains of `cfg.min_len..max_len`
    operations (the task's `max_value`), none of them a question of the task's val or test
    split. Deterministic from `cfg.seed`."""
    held_out = {p.question for name, _ in task.sizes if name != "train" for p in task.split(name)}
    gen = dataclasses.replace(task, min_len=cfg.min_len, max_len=cfg.max_len)
    rng = random.Random(f"warmstart:{cfg.seed}")
    drawn: list[tuple[str, list[tuple[str, bool]]]] = []
    while len(drawn) < n:
        question, _ = gen._problem(rng)
        if question not in held_out:
            drawn.append((question, sample_pieces(question, rng, cfg, tags)))
    # Pieces are encoded in one batched call (the same ids as one call per piece: the
    # tokenizer has no state between calls), then laid out as `encode_pieces` does.
    texts = sorted({t for _, pieces in drawn for t, _ in pieces})
    encoded = dict(zip(texts, tokenizer(texts, add_special_tokens=False)["input_ids"]))
    out = []
    for question, pieces in drawn:
        ids = prompt_ids(tokenizer, question, None)
        mask = [0] * len(ids)
        for text, is_policy in pieces:
            ids += encoded[text]
            mask += [1 if is_policy else 0] * len(encoded[text])
        out.append({"input_ids": ids, "completion_mask": mask})
    return out


# --------------------------------------------------------------------------- cache


def _source_identity(policy_path: Path) -> dict[str, Any]:
    """What identifies the starting weights: the tiny-model marker when there is one, else
    the folder's config and the sizes of its weight files."""
    marker = policy_path / "eapo_model.json"
    if marker.is_file():
        data = json.loads(marker.read_text())
        return {"tiny_model_key": data.get("key"), "spec": data.get("spec")}
    ws = policy_path / MARKER_FILE
    if ws.is_file():
        return {"warmstart_key": json.loads(ws.read_text()).get("key")}
    files = sorted(p for p in policy_path.glob("*") if p.suffix in (".json", ".safetensors", ".bin"))
    return {"path": str(policy_path.resolve()), "files": [(p.name, p.stat().st_size) for p in files]}


_LATER_FIELDS = ("query", "slip_prob", "consult_style", "bare_refusal")  # added after format 2 caches existed


def _cfg_identity(cfg: WarmStartConfig) -> dict[str, Any]:
    """The config as hashed: fields added later are left out while at their defaults, so
    warm starts cached before they existed keep their keys."""
    out = dataclasses.asdict(cfg)
    defaults = {f.name: f.default for f in dataclasses.fields(WarmStartConfig)}
    for name in _LATER_FIELDS:
        if out[name] == defaults[name]:
            del out[name]
    return out


def warm_start_key(policy_path: str | Path, task: ChainTask, cfg: WarmStartConfig) -> str:
    payload = {
        "format": FORMAT_VERSION,
        "source": _source_identity(Path(policy_path)),
        # the oracle answers at RL time only; it never changes the demonstrations
        "task": {k: v for k, v in dataclasses.asdict(task).items() if k != "oracle"},
        "cfg": _cfg_identity(cfg),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


class ShippedWarmStartError(RuntimeError):
    """The shipped warm start does not match its own record (a damaged installation)."""


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file of a warm-start folder but its marker, by name."""
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())
            if f.is_file() and f.name != MARKER_FILE}


def _copy_shipped(artifact: Path, tmp: Path, key: str) -> None:
    """Copy the shipped folder into `tmp`, marker last, after checking key and files."""
    record = json.loads((artifact / MARKER_FILE).read_text())
    if record.get("key") != key or not record.get("files"):
        raise ShippedWarmStartError(f"{artifact}: its marker does not record key {key} and its files")
    tmp.mkdir(parents=True)
    for name in record["files"]:
        shutil.copyfile(artifact / name, tmp / name)
    got = file_digests(tmp)
    if got != record["files"]:
        bad = sorted(n for n in set(got) | set(record["files"]) if got.get(n) != record["files"].get(n))
        raise ShippedWarmStartError(f"{artifact}: files {bad} do not match their recorded sha256 (reinstall eapo, "
                                    "or train the warm start anew: warm_start(..., shipped=False))")
    shutil.copyfile(artifact / MARKER_FILE, tmp / MARKER_FILE)  # last: completes the copy


def _is_complete(folder: Path, key: str) -> bool:
    try:
        return json.loads((folder / MARKER_FILE).read_text()).get("key") == key
    except (OSError, ValueError):
        return False


def warm_starts_dir() -> Path:
    """Where the shipped warm starts are: `eapo/assets/warmstarts/` inside the installed
    package. Found by path from the root package: `eapo.assets` (the data and its rebuild
    entry point) sits above training, so it is not imported here."""
    return Path(str(resources.files("eapo"))) / "assets" / "warmstarts"


def shipped_warm_start(key: str) -> Path | None:
    """The shipped warm-start folder for `key`, or None."""
    folder = warm_starts_dir() / f"warmstart-{key}"
    return folder if folder.is_dir() else None


def warm_start(
    policy_path: str | Path, out_dir: str | Path, task: ChainTask = ChainTask(), cfg: WarmStartConfig = WarmStartConfig(),
    *, shipped: bool = True,
) -> Path:
    """Fine-tune the policy at `policy_path` on worked solutions; return the saved model folder
    `out_dir/warmstart-<key>` (model, tokenizer, generation config, `eapo_warmstart.json`).

    A finished folder for the same (policy, task, cfg) is returned at once without training.
    With `shipped`, a warm start shipped with the package for the same key (`eapo.assets`:
    the default one) is copied instead of trained, after its files are checked against the
    sha256 its marker records."""
    policy_path, out_dir = Path(policy_path), Path(out_dir)
    key = warm_start_key(policy_path, task, cfg)
    final = out_dir / f"warmstart-{key}"
    if _is_complete(final, key):
        logger.info("warm start %s is cached", final)
        return final
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    artifact = shipped_warm_start(key) if shipped else None
    try:
        if artifact is not None:
            _copy_shipped(artifact, tmp, key)
            logger.info("warm start %s: the shipped one (the same recipe, key and files; eapo.assets)", key)
        else:
            record = _train(policy_path, tmp, task, cfg)
            record.update(key=key, format=FORMAT_VERSION, source=_source_identity(policy_path),
                          task=dataclasses.asdict(task), cfg=dataclasses.asdict(cfg), files=file_digests(tmp))
            (tmp / MARKER_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")  # last: completes it
        if final.exists():
            if _is_complete(final, key):  # another process finished first; its result is as good
                return final
            trash = out_dir / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            tmp.rename(final)
        except OSError:
            if not _is_complete(final, key):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("warm start saved to %s", final)
    return final


# --------------------------------------------------------------------------- training


def make_trainer(model: Any, tokenizer: Any, examples: list[dict[str, list[int]]], cfg: WarmStartConfig,
                 output_dir: str | Path) -> Any:
    """TRL's `SFTTrainer` on pre-tokenized examples, the loss on `completion_mask` tokens only,
    with CPU-safe settings (no bf16, no gradient checkpointing, no reporting, no checkpoints)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, cfg.steps // 20),
        weight_decay=0.0,
        completion_only_loss=True,  # labels = input_ids where completion_mask is 1, else -100
        max_length=None,  # examples are short; never cut one
        packing=False,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=True,
        bf16=False,
        **no_activation_checkpointing(),  # TRL turns it on by default; the name depends on transformers
        report_to="none",
        save_strategy="no",
        logging_steps=max(1, cfg.steps // 10),
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    from eapo.training.callbacks import Progress

    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
                      callbacks=[Progress("warm start", watch={"loss/policy": "loss"})])


def _train(policy_path: Path, folder: Path, task: ChainTask, cfg: WarmStartConfig) -> dict[str, Any]:
    from eapo.models.build import load_policy

    t0 = time.perf_counter()
    model, tokenizer = load_policy(policy_path)
    examples = build_examples(tokenizer, task, cfg, cfg.steps * cfg.batch_size)
    trainer = make_trainer(model, tokenizer, examples, cfg, folder / "_trainer")
    result = trainer.train()
    trainer.model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    shutil.rmtree(folder / "_trainer", ignore_errors=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "train_loss": result.training_loss,
        "final_logged_loss": losses[-1] if losses else None,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "examples": len(examples),
    }
