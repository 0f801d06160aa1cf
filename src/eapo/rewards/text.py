r"""Text scorers: multiple-choice letters ("choice") and SQuAD-style "em" and "f1".

"em" and "f1" follow the official SQuAD v1.1 evaluation script exactly: `normalize_answer`
lower-cases, removes ASCII punctuation (`string.punctuation`), removes the articles
a/an/the as whole words and collapses whitespace; F1 is over the multiset of normalised
tokens, 0 when no token is shared (also when both sides are empty). One gold per call:
SQuAD takes the max over several golds, our benchmark files carry one.

What is read from a completion: the last `<answer>...</answer>` content, else the last
`\boxed{...}`, else the whole text. For "choice", a letter A-J is then looked for, most
explicit first: a bare letter such as "B", "(B)", "B.", "**C**", "B) Paris"; else the last
"answer is (B)" / "Answer: B"; else the last "(B)" or "**B**" in the text. A capital
"A" used as an article ("A good question") is not a letter: a bare letter must stand
alone or be followed by `.`, `)` or `:`.

Not here: LLM-judged grading (SimpleQA's official grader uses a model; we use EM/F1).
"""

from __future__ import annotations

import re
import string
from collections import Counter

from eapo.protocol.parser import extract_boxed
from eapo.rewards.scorers import SCORERS, ScoreResult

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}")
_BARE = re.compile(r"\(?([A-J])(?:\)?|[.:)].*)", re.DOTALL)
# Case-insensitive "answer", but a capital letter: "the answer is a bit unclear" is no choice.
_ANSWER_IS = re.compile(r"(?i:answer\s*(?:is|:)\s*(?:option\s*)?)[:\-]?\s*\(?([A-J])\b(?!['\w])")
_MARKED = re.compile(r"\(([A-J])\)|\*\*([A-J])\*\*")
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def final_text(completion: str) -> str | None:
    r"""The answer part of a completion: last `<answer>` content, else last `\boxed{}`, else all.

    >>> final_text("think... <answer> Paris </answer>")
    'Paris'
    >>> final_text("   ") is None
    True
    """
    tags = _ANSWER_TAG.findall(completion)
    if tags and tags[-1].strip():
        return tags[-1].strip()
    boxed = extract_boxed(completion)
    if boxed:
        return boxed
    return completion.strip() or None


def extract_choice(text: str) -> str | None:
    """The multiple-choice letter (A-J) a text commits to, or None.

    >>> [extract_choice(t) for t in ["The answer is (B).", "**C**", "D. 42", "A good guess"]]
    ['B', 'C', 'D', None]
    """
    body = final_text(text)
    if body is None:
        return None
    plain = _TEXT_WRAP.sub(r"\1", body).replace("*", "").strip()
    m = _BARE.fullmatch(plain)
    if m:
        return m.group(1)
    found = _ANSWER_IS.findall(body.replace("*", ""))
    if found:
        return found[-1]
    marked = _MARKED.findall(body)
    if marked:
        a, b = marked[-1]
        return a or b
    return None


@SCORERS.register("choice")
def choice_score(answer: str | None, gold: str) -> ScoreResult:
    """1.0 iff the extracted letter equals the gold letter.

    >>> choice_score("I think the answer is (C)", "C").reason
    'match'
    """
    if answer is None or not answer.strip():
        return ScoreResult(0.0, None, "no_answer")
    letter = extract_choice(answer)
    if letter is None:
        return ScoreResult(0.0, None, "unparseable")
    target = extract_choice(gold) or gold.strip().upper()
    ok = letter == target
    return ScoreResult(1.0 if ok else 0.0, letter, "match" if ok else "mismatch")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 `normalize_answer`: lower, drop punctuation, drop articles, fix spaces.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 token F1 (0.0 when no normalised token is shared).

    >>> f1("the cat sat", "a cat")
    0.6666666666666666
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


@SCORERS.register("em")
def em_score(answer: str | None, gold: str) -> ScoreResult:
    """SQuAD exact match after `normalize_answer`.

    >>> em_score("<answer>The Beatles.</answer>", "beatles").score
    1.0
    """
    text = None if answer is None else final_text(answer)
    if text is None:
        return ScoreResult(0.0, None, "no_answer")
    ok = normalize_answer(text) == normalize_answer(gold)
    return ScoreResult(1.0 if ok else 0.0, text, "match" if ok else "mismatch")


@SCORERS.register("f1")
def f1_score(answer: str | None, gold: str) -> ScoreResult:
    """SQuAD token F1 in [0, 1]; reason "partial" when 0 < F1 < 1.

    >>> f1_score("<answer>Paris, France</answer>", "Paris").reason
    'partial'
    """
    text = None if answer is None else final_text(answer)
    if text is None:
        return ScoreResult(0.0, None, "no_answer")
    score = f1(text, gold)
    reason = "match" if score == 1.0 else "partial" if score > 0 else "mismatch"
    return ScoreResult(score, text, reason)
