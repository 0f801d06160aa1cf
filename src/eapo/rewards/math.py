r"""The "math" scorer: a completion's final answer against a LaTeX gold, via math-verify.

Why math-verify: MATH-style golds (`\frac{14}{3}`, `\left( 3, \frac{\pi}{2} \right)`,
`90^\circ`, `6 - 5i`) have many equivalent spellings; math-verify parses both sides into
sympy and compares them (numbers, sets, intervals, equations `x=5` vs `5`, units such as
degrees). Its public API is two functions, `parse` and `verify`.

What is extracted from a completion, in this order: the last complete `\boxed{...}`
(`eapo.protocol.parser.extract_boxed`), else the content of the last `<answer>...</answer>`,
else the whole text (math-verify then finds the last expression itself). A boxed or
tagged answer without `$` is wrapped in `$...$` before parsing, because math-verify's
LaTeX extractor only reads math inside delimiters (`\dfrac{1}{2}` alone parses to nothing).

Fast paths, before any sympy:
  - integer golds (AIME, AIMO, GSM8K, DAPO): if the extracted answer is a plain integer
    (thousands commas, `$`, `\!` and spaces allowed), compare as Python ints;
  - the same text on both sides after light normalisation (case, spaces, `\text{}`,
    `$`) is a match. This also covers text golds such as `\text{June 20}`, which
    math-verify turns into a product of symbols and rejects.

Timeouts: math-verify guards `parse` and `verify` with `signal.alarm`, which raises in any
thread but the main one. We pass `parsing_timeout=None` and `timeout_seconds=None`, which
disables that mechanism (math-verify logs a one-time warning saying so, which `eapo score`
silences); a caller that needs a time limit runs scoring in a worker process.

Not here: code answers (the sandbox scorer), multiple-choice letters (`eapo.rewards.text`).
"""

from __future__ import annotations

import re

from eapo.protocol.parser import extract_boxed
from eapo.rewards.scorers import SCORERS, ScoreResult

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_PLAIN_INT = re.compile(r"[-+]?\d+")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def extract_answer(completion: str) -> tuple[str | None, bool]:
    r"""The final-answer text of a completion and whether it came from a box or a tag.

    >>> extract_answer(r"so \boxed{\frac{1}{2}} <answer>3</answer>")
    ('\\frac{1}{2}', True)
    >>> extract_answer("it is <answer> 7 </answer>")
    ('7', True)
    >>> extract_answer("  ")
    (None, False)
    """
    boxed = extract_boxed(completion)
    if boxed:
        return boxed, True
    tags = _ANSWER_TAG.findall(completion)
    if tags and tags[-1].strip():
        return tags[-1].strip(), True
    text = completion.strip()
    return (text or None), False


def _light(text: str) -> str:
    """Case, spaces, `$` and `\\$`, `\\!`, `\\text{}` wrappers and a trailing period removed."""
    t = _TEXT_WRAP.sub(r"\1", text)
    t = t.replace("\\$", "").replace("$", "").replace("\\!", "").replace("\\,", "")
    t = "".join(t.split()).lower()
    return t.rstrip(".")


def _as_int(text: str) -> int | None:
    t = _light(text).replace(",", "")
    return int(t) if _PLAIN_INT.fullmatch(t) else None


def _parse(text: str, *, wrap: bool) -> list:
    from math_verify import parse  # imported on first use: it pulls in sympy (~0.5 s)

    candidates = [f"${text}$", text] if wrap and "$" not in text else [text]
    for c in candidates:
        parsed = parse(c, parsing_timeout=None)
        if parsed:
            return parsed
    return []


@SCORERS.register("math")
def math_score(answer: str | None, gold: str) -> ScoreResult:
    r"""Score 1.0 iff the completion's final answer equals `gold` mathematically.

    Reasons: "match", "mismatch", "no_answer" (nothing to extract), "unparseable"
    (math-verify found no expression in the answer, or in the gold).

    >>> math_score(r"... so \boxed{0.5}", r"\frac{1}{2}").reason
    'match'
    >>> math_score("<answer>025</answer>", "25").score
    1.0
    """
    if answer is None:
        return ScoreResult(0.0, None, "no_answer")
    extracted, delimited = extract_answer(answer)
    if extracted is None:
        return ScoreResult(0.0, None, "no_answer")

    gold_int = _as_int(gold)
    if gold_int is not None and delimited:
        value = _as_int(extracted)
        if value is not None:
            ok = value == gold_int
            return ScoreResult(1.0 if ok else 0.0, extracted, "match" if ok else "mismatch")
    if delimited and _light(extracted) == _light(gold):
        return ScoreResult(1.0, extracted, "match")

    gold_parsed = _parse(gold, wrap=True)
    if not gold_parsed:
        return ScoreResult(0.0, extracted, "unparseable")
    pred_parsed = _parse(extracted, wrap=delimited)
    if not pred_parsed:
        return ScoreResult(0.0, extracted, "unparseable")
    # `verify(gold, target)`: the order matters (the gold's form guides e.g. set vs tuple).
    from math_verify import verify

    ok = verify(gold_parsed, pred_parsed, timeout_seconds=None)
    shown = extracted if delimited else str(pred_parsed[-1])
    return ScoreResult(1.0 if ok else 0.0, shown, "match" if ok else "mismatch")
