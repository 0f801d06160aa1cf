r"""The "math" scorer: a completion's final answer against a LaTeX gold, via math-verify.

Why math-verify: MATH-style golds (`\frac{14}{3}`, `\left( 3, \frac{\pi}{2} \right)`,
`90^\circ`, `6 - 5i`) have many equivalent spellings; math-verify parses both sides into
sympy and compares them (numbers, sets, intervals, equations `x=5` vs `5`, units such as
degrees). Its public API is two functions, `parse` and `verify`.

What is extracted from a completion, in this order: the last complete `\boxed{...}`
(`eapo.protocol.parser.extract_boxed`), else the content of the last `<answer>...</answer>`,
else the whole text. Callers pass either a whole completion (`eapo score`) or an answer
the rollout engine already took out of its box or tag (`Episode.answer`, e.g. `2\sqrt{3}`),
so undelimited text is read by its shape: a bare expression (no `$`, no prose words outside
LaTeX commands) is treated like a boxed answer; prose is handed to math-verify as it is, which
then finds the last expression itself. A boxed, tagged or bare answer without `$` is wrapped
in `$...$` and read with math-verify's LaTeX extraction only, because that extractor only
reads math inside delimiters (`\dfrac{1}{2}` alone parses to nothing) and the plain-text
extractor reads `2\sqrt{3}` as `2`, which would make a near miss of gold 2 a match.

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
# What is not prose in an undelimited answer: words inside text-like commands, command names.
_WORDS_IN_COMMANDS = re.compile(r"\\(?:text\w*|math\w*|mbox|operatorname|begin|end)\{[^{}]*\}|\\[A-Za-z]+")
_DOLLAR = re.compile(r"(?<!\\)\$")  # a math delimiter, not the escaped sign `\$`
_PROSE = re.compile(r"[A-Za-z]{3,}|\b[A-Za-z]{2}\s+[A-Za-z]{2,}\b")


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


def _is_bare_expression(text: str) -> bool:
    r"""Whether undelimited text reads as one expression rather than prose: no `$`, no line
    break, outside LaTeX commands no word of three letters and no two words in a row
    (`\text{June 20}`, `\operatorname{lcm}`, `2xy` and `10 cm` are not prose; `so it is 5` is).

    >>> _is_bare_expression(r"2\sqrt{3}"), _is_bare_expression("so it is 5")
    (True, False)
    """
    if _DOLLAR.search(text) or "\n" in text:
        return False
    return _PROSE.search(_WORDS_IN_COMMANDS.sub(" ", text)) is None


def _parse(text: str, *, latex: bool) -> list:
    """math-verify's reading of `text`: with `latex`, `$text$` through its LaTeX extraction
    only (a box's content, a gold); else the text as it is through its default extraction."""
    from math_verify import LatexExtractionConfig, parse  # first use pulls in sympy (~0.5 s)

    if latex and not _DOLLAR.search(text):
        return parse(f"${text}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)
    return parse(text, parsing_timeout=None)


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
    # an answer the engine already unboxed (`2\sqrt{3}`) reads as if it were still boxed
    bare = _is_bare_expression(extracted)
    delimited = delimited or bare

    gold_int = _as_int(gold)
    if gold_int is not None and delimited:
        value = _as_int(extracted)
        if value is not None:
            ok = value == gold_int
            return ScoreResult(1.0 if ok else 0.0, extracted, "match" if ok else "mismatch")
    if delimited and _light(extracted) == _light(gold):
        return ScoreResult(1.0, extracted, "match")

    # golds are trusted text: a gold the LaTeX reading misses may still read as plain text
    gold_parsed = _parse(gold, latex=True) or _parse(gold, latex=False)
    if not gold_parsed:
        return ScoreResult(0.0, extracted, "unparseable")
    # no plain-text fallback for an answer: it would read a broken `2\sqrt{3` as 2
    pred_parsed = _parse(extracted, latex=bare)
    if not pred_parsed:
        return ScoreResult(0.0, extracted, "unparseable")
    # `verify(gold, target)`: the order matters (the gold's form guides e.g. set vs tuple).
    from math_verify import verify

    ok = verify(gold_parsed, pred_parsed, timeout_seconds=None)
    shown = extracted if delimited else str(pred_parsed[-1])
    return ScoreResult(1.0 if ok else 0.0, shown, "match" if ok else "mismatch")
