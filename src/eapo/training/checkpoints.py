"""Our half of a checkpoint, and finding the last complete one.

TRL/transformers save the model, optimiser, scheduler, RNG and trainer state into
`checkpoint-N/`; we add `eapo_state.json` (per-problem history of the adaptive schedule,
expert-pool routing state) and then, last, the marker `EAPO_COMPLETE`. A folder without
the marker was cut off mid-write and is never loaded. The schedules and the acceptance
coins need no state: they are pure functions of the global step and the episode ids.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

STATE_FILE = "eapo_state.json"
MARKER = "EAPO_COMPLETE"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(RuntimeError):
    pass


def write_state(folder: str | Path, state: dict[str, Any]) -> None:
    folder = Path(folder)
    try:
        tmp = folder / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, folder / STATE_FILE)
        (folder / MARKER).write_text("ok\n")
    except OSError as e:  # disk full, permissions: say where and why, keep training state intact
        raise CheckpointError(f"could not write the EAPO state of checkpoint {folder}: {e.strerror or e}") from e


def read_state(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not (folder / MARKER).exists():
        raise CheckpointError(f"{folder} is not a complete checkpoint (no {MARKER} marker)")
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {folder / STATE_FILE}: {e}") from e


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    out = []
    base = Path(run_dir)
    if not base.is_dir():
        return []
    for child in base.iterdir():
        m = _CKPT.match(child.name)
        if m and child.is_dir() and (child / MARKER).exists() and (child / "trainer_state.json").exists():
            out.append((int(m.group(1)), child))
    return [p for _, p in sorted(out)]


def last_complete_checkpoint(run_dir: str | Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None
