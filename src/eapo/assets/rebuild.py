"""`python -m eapo.assets.rebuild [--check]`: train the default warm start with the project's
own recipe, in a fresh cache, and write it into `eapo/assets/warmstarts/` (replacing any
older shipped one); `--check` only compares the rebuilt files with the shipped ones and
exits 1 on a difference. One torch thread, as the shipped one was built."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path


def rebuild(cache: Path) -> Path:
    """The default warm start trained from nothing in `cache` (the shipped one not used)."""
    import torch

    from eapo.assembly.run import build_task
    from eapo.models.build import ensure_tiny_models
    from eapo.schema import TrainConfig
    from eapo.training.warmstart import warm_start

    torch.set_num_threads(1)
    cfg = TrainConfig()
    tiny = ensure_tiny_models(cache)["policy"]
    return warm_start(tiny, cache / "warmstarts", build_task(cfg), cfg.warmstart, shipped=False)


def main(argv: list[str] | None = None) -> int:
    from eapo.training.warmstart import MARKER_FILE, warm_starts_dir

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare with the shipped artifact, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eapo-rebuild-") as tmp:
        built = rebuild(Path(tmp))
        files = json.loads((built / MARKER_FILE).read_text())["files"]
        here = warm_starts_dir()
        target = here / built.name
        if args.check:
            if not target.is_dir():
                print(f"no shipped artifact {target.name}: the recipe's key changed (rebuild to ship it)")
                return 1
            shipped = json.loads((target / MARKER_FILE).read_text())["files"]
            if shipped != files:
                diff = sorted(k for k in set(shipped) | set(files) if shipped.get(k) != files.get(k))
                print(f"{target.name}: rebuilt files differ from the shipped ones: {diff}")
                return 1
            print(f"{target.name}: rebuilt bit-for-bit ({len(files)} files)")
            return 0
        for old in here.glob("warmstart-*"):
            shutil.rmtree(old)
        here.mkdir(parents=True, exist_ok=True)
        shutil.copytree(built, target)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
