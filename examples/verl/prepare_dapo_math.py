"""DAPO-Math-17k (and AIME 2024 for validation) as verl parquet files for the EAPO agent loop.

    python examples/verl/prepare_dapo_math.py --out ~/data/eapo [--data ../shared/data]

Reads the JSON Lines files of ../shared/data (id, question, answer), writes
dapo_math_17k.parquet and aime2024.parquet with rows of `eapo.integrations.verl.core.to_verl_row`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eapo.integrations.verl.core import to_verl_row


def convert(src: Path, dst: Path, split: str) -> int:
    from datasets import Dataset

    rows = [to_verl_row(json.loads(line), split=split) for line in src.read_text().splitlines() if line.strip()]
    dst.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(dst))
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    for name, split in (("dapo_math_17k", "train"), ("aime2024", "test")):
        n = convert(args.data / f"{name}.jsonl", args.out / f"{name}.parquet", split)
        print(f"{args.out / (name + '.parquet')}: {n} rows")


if __name__ == "__main__":
    main()
