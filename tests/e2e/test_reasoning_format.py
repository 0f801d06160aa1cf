"""A reasoning model's formats through the training wiring (issue 9, EAPO.md §8).

The policy's tokenizer carries a chat template in the form DeepSeek-R1-Distill-Qwen ships:
the generation prompt opens a `<think>` block, and earlier assistant turns are re-rendered
with everything up to `</think>` cut away. The task is a dataset task built as `eapo train
--data` builds it (`build_task`, `with_task_settings`), the rollout engine is configured as
`train_run` configures it, and a scripted policy writes what such a model writes: thinking
with a consultation in the middle of it, then a final `\\boxed{}`.

What must hold: the prompt is that template's rendering, made once; every later token is
the sampled ids or an observation's own ids, in order, so the thinking stays in the record
exactly as written (re-rendering the conversation through the template would drop it);
the answer is the last box of the policy's own final text, scored by math-verify (which
also accepts `34.0` for 34, where the integer scorer would not); a box that only the
expert wrote earns nothing.
"""

from __future__ import annotations

import json

import pytest

from eapo.config import load_config
from eapo.experts import ExpertPool, OracleExpert
from eapo.models.tokenizer import build_tokenizer
from eapo.protocol.prompt import prompt_ids
from eapo.protocol.render import render_observation, render_reply
from eapo.rewards.scorers import SCORERS
from eapo.rollout.engine import RolloutEngine
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.training.config import TrainConfig
from eapo.assembly.run import build_task, with_task_settings

# DeepSeek-R1-Distill-Qwen's template, reduced to the parts a single-user-turn chat uses
# (its tokenizer_config.json): system text first, user and assistant markers, the think
# block of earlier assistant turns cut away, the generation prompt opening `<think>`.
R1_TEMPLATE = (
    "{% set ns = namespace(system_prompt='') %}"
    "{% for message in messages %}{% if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}"
    "{% endif %}{% endfor %}{{ bos_token }}{{ ns.system_prompt }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)

THINK = "Let me set up the equations. Perhaps \\boxed{12}? Not sure, I will ask. "
CONSULT = "<consult><query>What is a+b+c?</query></consult>"
FINAL = {"solve": "\nSo a+b+c = 34.\n</think>\n\nThe answer is \\boxed{34.0}.",
         "copy": "\nI still cannot tell.\n</think>\n\nI do not know."}


@pytest.fixture()
def tokenizer():
    tok = build_tokenizer()
    tok.chat_template = R1_TEMPLATE
    return tok


@pytest.fixture()
def task_cfg(tmp_path):
    data = tmp_path / "mine.jsonl"
    rows = [{"id": "solve", "problem": "Find a+b+c (first).", "solution": "34"},
            {"id": "copy", "problem": "Find a+b+c (second).", "solution": "34"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(TrainConfig, None, [
        "task.name=dataset", f"task.data={data}", "task.fields={question: problem, answer: solution}",
        "task.scorer=math", "task.train_size=1", "task.val_size=1", "task.test_size=0", "eval.val_size=1",
        "rollout.system_prompt=null", "rollout.tokens_per_turn=400",
        "rollout.max_policy_tokens=800", "rollout.max_completion_tokens=1200",
    ])
    task = build_task(cfg)
    return with_task_settings(cfg, task), task


def run_episodes(cfg, task, tok):
    problems = task.split("train") + task.split("val")
    by_question = {p.question: p.id for p in problems}

    def script(ctx, call):
        text = tok.decode(ctx)
        pid = next(i for q, i in by_question.items() if q in text)
        done = text.split("<｜Assistant｜><think>\n")[-1]
        if "<expert" not in done:
            return tok.encode(THINK + CONSULT, add_special_tokens=False)
        return tok.encode(FINAL[pid], add_special_tokens=False) + [tok.eos_token_id]

    # the expert writes a boxed answer too: it must never count for the policy
    pool = ExpertPool([OracleExpert(lambda r: f"The total is \\boxed{{{r.gold}}}.")] * 3)
    engine = RolloutEngine(ScriptedBackend(script, (tok.eos_token_id,)), tok, cfg.rollout, pool=pool,
                           scorer=task.scorer, reward=cfg.reward, seed=cfg.seed)
    episodes = engine.run(problems, step=1, rhos=1.0, turn_budget=10)
    return {ep.problem_id: ep for ep in episodes}, engine, problems


def test_a_math_dataset_task_reads_boxed_answers_scored_by_math_verify(task_cfg):
    cfg, task = task_cfg
    assert task.scorer == "math" and cfg.rollout.tags.allow_boxed
    assert [p.id for p in task.split("train") + task.split("val")] in (["solve", "copy"], ["copy", "solve"])


def test_prompt_rendered_once_then_token_ids_appended(task_cfg, tokenizer):
    cfg, task = task_cfg
    episodes, engine, problems = run_episodes(cfg, task, tokenizer)
    ep = episodes["solve"]
    problem = next(p for p in problems if p.id == "solve")
    # the opening: exactly the template's rendering, with the generation prompt's open <think>
    assert ep.prompt_ids == prompt_ids(tokenizer, problem.question, engine.system)
    assert tokenizer.decode(ep.prompt_ids).endswith("<｜Assistant｜><think>\n")
    # then the sampled ids and the observation's own ids, nothing re-rendered
    observation = render_observation([render_reply(0, "The total is \\boxed{34}.", cfg.rollout.tags)])
    expected = (tokenizer.encode(THINK + CONSULT, add_special_tokens=False)
                + tokenizer.encode(observation, add_special_tokens=False)
                + tokenizer.encode(FINAL["solve"], add_special_tokens=False) + [tokenizer.eos_token_id])
    assert ep.completion_ids == expected
    n1, n2 = len(tokenizer.encode(THINK + CONSULT)), len(tokenizer.encode(observation))
    assert ep.loss_mask == [1] * n1 + [0] * n2 + [1] * (len(expected) - n1 - n2)
    # the thinking is kept as written; the template would cut it if the chat were re-rendered
    written = tokenizer.decode(ep.completion_ids, skip_special_tokens=True)
    assert THINK in written and "</think>" in written
    rerendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": engine.system}, {"role": "user", "content": problem.question},
         {"role": "assistant", "content": written}], tokenize=False)
    assert THINK not in rerendered  # token drift (EAPO.md §8): why ids, not text, are the record


def test_the_answer_is_the_policy_s_last_box_scored_by_math_verify(task_cfg, tokenizer):
    cfg, task = task_cfg
    ep = run_episodes(cfg, task, tokenizer)[0]["solve"]
    # \boxed{12}, written while thinking before the consultation, is not the answer; the final box is
    assert ep.answer == "34.0" and ep.score == 1.0 and ep.reward == 1.0
    assert SCORERS.get("integer")(ep.answer, "34").score == 0.0  # why the reward must be math-verify's
    assert ep.consults == 1 and ep.accepted_calls == 1


def test_a_box_only_the_expert_wrote_earns_nothing(task_cfg, tokenizer):
    cfg, task = task_cfg
    ep = run_episodes(cfg, task, tokenizer)[0]["copy"]
    assert "\\boxed{34}" in tokenizer.decode(ep.completion_ids)  # the expert's reply is in the record ...
    assert ep.answer is None and ep.score == 0.0 and ep.reward == 0.0  # ... but not the policy's answer


def test_a_latex_answer_in_a_box_matches_its_latex_gold():
    from eapo.protocol.parser import parse_segment
    from eapo.protocol.tags import Tags
    from eapo.rewards.math import math_score

    answer = parse_segment("so the side is \\boxed{2\\sqrt{3}}", Tags(allow_boxed=True), 3).answer
    assert answer == "2\\sqrt{3}"
    assert math_score(answer, "2\\sqrt{3}").score == 1.0
    assert math_score(answer, "\\sqrt{12}").score == 1.0 and math_score(answer, "2").score == 0.0
