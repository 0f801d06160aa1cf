"""Parser rules as a table of policy texts, then properties over arbitrary text.

Covered: every rule of `eapo.protocol.parser` with the default and a custom tag set.
Not covered: what the engine does with the parsed action."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eapo.protocol.parser import extract_boxed, normalize_query, parse_segment, strip_tags
from eapo.protocol.tags import Tags
from eapo.types import ActionKind

TAGS = Tags()
BOXED = Tags(allow_boxed=True)
CUSTOM = Tags(
    consult_open="[[ASK]]",
    consult_close="[[/ASK]]",
    query_open="[[Q]]",
    query_close="[[/Q]]",
    answer_open="[[ANS]]",
    answer_close="[[/ANS]]",
)
K = 3

THINK, CONSULT, ANSWER = ActionKind.THINK, ActionKind.CONSULT, ActionKind.ANSWER


def consult(*queries: str) -> str:
    return "<consult>" + "".join(f"<query>{q}</query>" for q in queries) + "</consult>"


def case(id, text, kind, queries=(), dropped=0, answer=None, ok=True, issues=(), tags=TAGS):
    """One row: the policy text and what must be read from it (`ok` is `well_formed`)."""
    return pytest.param(text, tags, kind, queries, dropped, answer, ok, issues, id=id)


ANS_IN_CONSULT = "<consult><query>a</query><answer>4</answer></consult>"
CLOSE_IN_QUERY = "<consult><query>is </answer> a tag?</query></consult>"
CUSTOM_CONSULT = "[[ASK]][[Q]]a[[/Q]][[Q]]b[[/Q]][[/ASK]]"
CUSTOM_NESTED = "[[ASK]][[Q]]is [[ANS]] a tag[[/Q]][[/ASK]]"

CASES = [
    # think on
    case("plain_think", "let me think", THINK),
    case("empty_text", "", THINK),
    case("unclosed_answer", "so <answer>4", THINK, ok=False, issues=("unclosed_answer",)),
    case("unclosed_consult", "hm <consult><query>a", THINK, ok=False, issues=("unclosed_consult",)),
    case("partial_tag", "hm <consu", THINK),
    case("boxed_off", r"so \boxed{4}", THINK),
    # consult: 1 .. K + 2 queries
    case("one_query", consult("a"), CONSULT, ("a",)),
    case("two_queries", consult("a", "b"), CONSULT, ("a", "b")),
    case("k_queries", consult("a", "b", "c"), CONSULT, ("a", "b", "c")),
    case("k_plus_1", consult("a", "b", "c", "d"), CONSULT, ("a", "b", "c"), dropped=1),
    case("k_plus_2", consult("a", "b", "c", "d", "e"), CONSULT, ("a", "b", "c"), dropped=2),
    case("reasoning_first", "I need help. " + consult(" what is 2+2? "), CONSULT, ("what is 2+2?",)),
    case("newlines", "<consult>\n<query>\na\n</query>\n<query>b</query>\n</consult>", CONSULT, ("a", "b")),
    case("text_between", "<consult>so <query>a</query> and <query>b</query>.</consult>", CONSULT, ("a", "b")),
    # consult: malformed
    case("empty_query", consult("a", "  ", "b"), CONSULT, ("a", "b"), ok=False, issues=("empty_query",)),
    case(
        "empty_queries_not_dropped",
        consult("", "a", "", "b", "c", "d"),
        CONSULT,
        ("a", "b", "c"),
        dropped=1,
        ok=False,
        issues=("empty_query",),
    ),
    case("empty_consult", "<consult></consult>", CONSULT, ok=False, issues=("empty_consult",)),
    case("whitespace_consult", "<consult> \n </consult>", CONSULT, ok=False, issues=("empty_consult",)),
    case("only_empty_queries", consult(" ", ""), CONSULT, ok=False, issues=("empty_query", "empty_consult")),
    case("bare_query", "<consult> what is 2? </consult>", CONSULT, ("what is 2?",), ok=False, issues=("bare_query",)),
    case(
        "unclosed_query_at_end",
        "<consult><query>a</query><query> b </consult>",
        CONSULT,
        ("a", "b"),
        ok=False,
        issues=("unclosed_query",),
    ),
    case(
        "query_opens_next",
        "<consult><query>a<query>b</query></consult>",
        CONSULT,
        ("a", "b"),
        ok=False,
        issues=("unclosed_query",),
    ),
    case("unopened_consult", "what is 2+2</consult>", CONSULT, ok=False, issues=("unopened_consult",)),
    case("nested_consult", "<consult>x" + consult("a"), CONSULT, ("a",), ok=False, issues=("nested_tags",)),
    case("consult_inside_answer", "<answer>" + consult("a"), CONSULT, ("a",), ok=False, issues=("nested_tags",)),
    case("answer_open_in_query", consult("is <answer>4"), CONSULT, ("is 4",), ok=False, issues=("nested_tags",)),
    case(
        "stray_close_in_bare",
        "<consult>a</query></consult>",
        CONSULT,
        ("a",),
        ok=False,
        issues=("bare_query", "nested_tags"),
    ),
    case("consult_trailing", consult("a") + " and more", CONSULT, ("a",), issues=("text_after_action",)),
    case("consult_trailing_ws", consult("a") + " \n", CONSULT, ("a",)),
    case("consult_then_answer", consult("a") + "<answer>4</answer>", CONSULT, ("a",), issues=("text_after_action",)),
    # answer
    case("answer", "so <answer> 4 </answer>", ANSWER, answer="4"),
    case("answer_multiline", "<answer>\nx = 4\n</answer>", ANSWER, answer="x = 4"),
    case("answer_trailing", "<answer>4</answer> I am done", ANSWER, answer="4", issues=("text_after_action",)),
    case("answer_then_consult", "<answer>4</answer>" + consult("a"), ANSWER, answer="4", issues=("text_after_action",)),
    case("empty_answer", "<answer>  </answer>", ANSWER, ok=False, issues=("empty_answer",)),
    case("unopened_answer", "it is 4</answer>", ANSWER, ok=False, issues=("unopened_answer",)),
    case("nested_answer", "<answer>3<answer>4</answer>", ANSWER, answer="4", ok=False, issues=("nested_tags",)),
    case(
        "answer_inside_consult",
        ANS_IN_CONSULT,
        ANSWER,
        answer="4",
        ok=False,
        issues=("nested_tags", "text_after_action"),
    ),
    case(
        "query_inside_answer",
        "<answer><query>4</query></answer>",
        ANSWER,
        answer="<query>4</query>",
        ok=False,
        issues=("nested_tags",),
    ),
    case("close_inside_query", CLOSE_IN_QUERY, ANSWER, ok=False, issues=("unopened_answer", "text_after_action")),
    # boxed
    case("boxed", r"so \boxed{4}", ANSWER, answer="4", tags=BOXED),
    case("boxed_nested_braces", r"so \boxed{\frac{1}{2}} done", ANSWER, answer=r"\frac{1}{2}", tags=BOXED),
    case("boxed_last", r"\boxed{3} no, \boxed{4}", ANSWER, answer="4", tags=BOXED),
    case("boxed_unfinished_last", r"\boxed{3} no, \boxed{4", ANSWER, answer="3", tags=BOXED),
    case("boxed_unbalanced", r"\boxed{\frac{1}{2}", THINK, tags=BOXED),
    case("boxed_empty", r"\boxed{ }", ANSWER, ok=False, issues=("empty_answer",), tags=BOXED),
    case(
        "boxed_in_open_answer",
        r"<answer>\boxed{4}",
        ANSWER,
        answer="4",
        ok=False,
        issues=("unclosed_answer",),
        tags=BOXED,
    ),
    case("answer_tag_beats_boxed", r"\boxed{3} <answer>4</answer>", ANSWER, answer="4", tags=BOXED),
    # custom tag strings
    case("custom_consult", CUSTOM_CONSULT, CONSULT, ("a", "b"), tags=CUSTOM),
    case("custom_answer", "so [[ANS]]4[[/ANS]]", ANSWER, answer="4", tags=CUSTOM),
    case("custom_ignores_default", "<answer>4</answer>", THINK, tags=CUSTOM),
    case("custom_nested", CUSTOM_NESTED, CONSULT, ("is  a tag",), ok=False, issues=("nested_tags",), tags=CUSTOM),
]


@pytest.mark.parametrize("text, tags, kind, queries, dropped, answer, well_formed, issues", CASES)
def test_parse_segment_cases(text, tags, kind, queries, dropped, answer, well_formed, issues):
    seg = parse_segment(text, tags, K)
    assert seg.kind == kind
    assert seg.queries == queries
    assert seg.dropped_queries == dropped
    assert seg.answer == answer
    assert seg.well_formed == well_formed
    assert set(seg.issues) == set(issues)
    assert len(seg.issues) == len(set(seg.issues))


@pytest.mark.parametrize(
    "turns, kind, queries, answer",
    [
        (["I will ask <cons", "ult><query>a</qu", "ery></consult>"], CONSULT, ("a",), None),
        (["<answer>4</ans", "wer>"], ANSWER, (), "4"),
        (["<consult><query>a</query><query>b", "</query></consult>"], CONSULT, ("a", "b"), None),
        (["so <ans", "wer>4"], THINK, (), None),
    ],
)
def test_tags_split_across_turns(turns, kind, queries, answer):
    """The caller joins think-on turns; each prefix that lacks the close stays think-on."""
    for i in range(1, len(turns)):
        assert parse_segment("".join(turns[:i]), TAGS, K).kind == THINK
    seg = parse_segment("".join(turns), TAGS, K)
    assert (seg.kind, seg.queries, seg.answer) == (kind, queries, answer)


@pytest.mark.parametrize(
    "text, kind, answer",
    [
        (r"so \boxed{4}, checking", THINK, None),  # a boxed partial result mid-thought
        ("<answer>4</answer>", ANSWER, "4"),  # tags do not depend on `final`
        (consult("a"), CONSULT, None),
    ],
)
def test_length_stop_reads_no_box(text, kind, answer):
    seg = parse_segment(text, BOXED, K, final=False)
    assert (seg.kind, seg.answer) == (kind, answer)


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_max_queries_cut(k):
    seg = parse_segment(consult("a", "b", "c", "d"), TAGS, k)
    assert seg.queries == ("a", "b", "c", "d")[:k]
    assert seg.dropped_queries == max(0, 4 - k)
    assert "empty_consult" not in seg.issues


def test_negative_max_queries_is_a_config_error():
    with pytest.raises(ValueError, match="max_queries"):
        parse_segment("x", TAGS, -1)


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"\boxed{4}", "4"),
        (r"\boxed{ 4 }", "4"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{a} and \boxed{b}", "b"),
        (r"\boxed{a} and \boxed{b", "a"),
        (r"{ \boxed{a}", "a"),
        (r"} \boxed{a}", "a"),
        (r"\boxed{\boxed{1}}", "1"),
        (r"\boxed{}", ""),
        (r"\boxed", None),
        (r"\boxed{", None),
        ("no box", None),
        ("", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    "a, b",
    [
        ("What is 2+2?", "what is 2+2"),
        ("  what   is\n2+2 ?? ", "what is 2+2"),
        ("WHAT IS 2+2.", "what is 2+2"),
        ("Ｗhat is 2+2？", "what is 2+2"),  # full-width forms
        ("f(x) = ?", "f(x) ="),
    ],
)
def test_normalize_query_folds_trivial_variations(a, b):
    assert normalize_query(a) == normalize_query(b) == b


def test_normalize_query_keeps_different_questions_apart():
    assert normalize_query("what is 2+2") != normalize_query("what is 2+3")


def test_strip_tags_loops_until_stable():
    assert strip_tags("<ans<answer>wer>5", ["<answer>"]) == "5"
    assert strip_tags("a<<query>query>b", ["<query>", ""]) == "ab"


# ---------------------------------------------------------------- properties

ALL_TAGS = list(TAGS.policy_tags)
# Text that keeps building tags by accident: fragments of tags and brace/box pieces.
FRAGMENTS = ["<", ">", "/", "answer", "consult", "query", r"\boxed{", "{", "}", " ", "\n", "a", "4"]
text_pieces = st.one_of(st.text(max_size=8), st.sampled_from(ALL_TAGS + FRAGMENTS))
tagged_text = st.lists(text_pieces, max_size=30).map("".join)
any_tags = st.sampled_from([TAGS, BOXED, CUSTOM, Tags(allow_boxed=True, consult_close="]]", consult_open="[[")])


@settings(max_examples=400)
@given(text=st.one_of(st.text(), tagged_text), tags=any_tags, k=st.integers(0, 5))
def test_parse_never_raises_and_keeps_its_invariants(text, tags, k):
    seg = parse_segment(text, tags, k)
    assert 0 <= len(seg.queries) <= k
    assert seg.dropped_queries >= 0
    for q in seg.queries:
        assert q and q == q.strip()
        assert not any(t in q for t in tags.policy_tags)
    if seg.kind != ActionKind.CONSULT:
        assert seg.queries == () and seg.dropped_queries == 0
    if seg.answer is not None:
        assert seg.kind == ActionKind.ANSWER
        assert seg.answer in text and seg.answer == seg.answer.strip() and seg.answer
    assert seg.well_formed == all(i == "text_after_action" for i in seg.issues)


@given(text=tagged_text)
def test_parse_ignores_everything_after_the_first_close(text):
    seg = parse_segment(text, TAGS, K)
    closes = [p + len(t) for t in (TAGS.consult_close, TAGS.answer_close) if (p := text.find(t)) >= 0]
    assume(closes)
    end = min(closes)
    head = parse_segment(text[:end], TAGS, K)
    assert (head.kind, head.queries, head.answer) == (seg.kind, seg.queries, seg.answer)


query_text = st.text(min_size=1, max_size=20).filter(
    lambda q: q.strip() and not any(t in q for t in ALL_TAGS)
)


@given(
    queries=st.lists(query_text, min_size=1, max_size=6),
    k=st.integers(1, 4),
    tags=st.sampled_from([TAGS, CUSTOM]),
    prefix=st.text(alphabet="abc .\n", max_size=10),
)
def test_round_trip_of_queries(queries, k, tags, prefix):
    assume(not any(t in q for q in queries for t in tags.policy_tags))
    body = "".join(f"{tags.query_open}{q}{tags.query_close}" for q in queries)
    seg = parse_segment(f"{prefix}{tags.consult_open}{body}{tags.consult_close}", tags, k)
    assert seg.kind == ActionKind.CONSULT and seg.well_formed
    assert [normalize_query(q) for q in seg.queries] == [normalize_query(q) for q in queries[:k]]
    assert seg.queries == tuple(q.strip() for q in queries[:k])
    assert seg.dropped_queries == max(0, len(queries) - k)


@given(answer=query_text, prefix=st.text(alphabet="abc .\n", max_size=10))
def test_round_trip_of_answer(answer, prefix):
    seg = parse_segment(f"{prefix}<answer>{answer}</answer>", TAGS, K)
    assert seg.kind == ActionKind.ANSWER and seg.answer == answer.strip() and seg.well_formed


@given(q=st.text())
def test_normalize_query_is_idempotent(q):
    n = normalize_query(q)
    assert normalize_query(n) == n
    assert n == n.strip()


@given(variant=st.sampled_from(["{}", "  {}  ", "{}?", "{} ?!", "{}.", "\n{}\n"]), q=query_text)
def test_normalize_query_same_key_for_trivial_rewrites(variant, q):
    assert normalize_query(variant.format(q)) == normalize_query(q)
