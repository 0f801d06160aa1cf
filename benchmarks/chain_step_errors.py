"""Where the built-in task's episodes go wrong: misread operands against wrong sums.

Reads rollout dumps (`rollouts-step*.jsonl`) and checks every step `a op b = r` the policy
wrote against the problem's own step at that position: an *operand error* when `op b` is
not the problem's, an *arithmetic error* when `r != a op b`, a *carry error* when `a` is not
the previous written result. Expert replies and consultation blocks are removed first, so
only the policy's steps count (a step written out after a reply counts too). Issue 4 used it
to find that a literal oracle cannot fix a misread operand.

    .venv/bin/python benchmarks/chain_step_errors.py runs/compare/self_rl/seed-0/rollouts/rollouts-step000001.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import re

from eapo.tasks.arithmetic import chain_steps

STEP = re.compile(r"(\d+)([+-])(\d+)=(\d+)")


def count(path: str) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for line in open(path):
        r = json.loads(line)
        text = re.sub(r"<expert[^>]*>.*?</expert>", "", r["text"], flags=re.S)
        text = re.sub(r"<consult>.*?</consult>", "", text, flags=re.S)
        gold = chain_steps(r["question"])
        written = STEP.findall(text)
        aided = any(call["accepted"] for t in r["turns"] for call in t["calls"])
        c["episodes"] += 1
        c["correct"] += r["score"] > 0
        c["aided"] += aided
        c["aided_correct"] += aided and r["score"] > 0
        for i, (a, op, b, res) in enumerate(written[: len(gold)]):
            _, gop, gb, _ = gold[i]
            c["steps"] += 1
            c["operand_err"] += op != gop or int(b) != gb
            c["arith_err"] += int(res) != (int(a) + int(b) if op == "+" else int(a) - int(b))
            c["carry_err"] += i > 0 and int(a) != int(written[i - 1][3])
        c["wrong_step_count"] += len(written) != len(gold)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dumps", nargs="+")
    for path in ap.parse_args().dumps:
        c = count(path)
        per = {k: round(c[k] / max(c["steps"], 1), 3) for k in ("operand_err", "arith_err", "carry_err")}
        print(json.dumps({"dump": path, **dict(c), "per_step": per}))


if __name__ == "__main__":
    main()
