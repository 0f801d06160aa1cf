"""Expert-free evaluation end to end: exact metrics from a scripted policy, the two locks
(refused attempts counted, the consult tag forbidden in decoding, no expert ever called),
and a smoke run on a real tiny random model."""

from __future__ import annotations

import pytest
import torch

from eapo.evaluation import evaluate_policy, pass_at_k
from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy
from eapo.models.tokenizer import build_tokenizer
from eapo.protocol.tags import Tags
from eapo.rollout.config import RolloutConfig
from eapo.rollout.fake_backend import ScriptedBackend
from eapo.tasks.arithmetic import ChainTask
from eapo.types import Problem

TAGS = Tags()
CFG = RolloutConfig(system_prompt="", tokens_per_turn=48, max_policy_tokens=128, max_completion_tokens=256)
PROBLEMS = [Problem("always", "11+22", "33"), Problem("never", "33+44", "77"), Problem("half", "55+66", "121")]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TAGS)


class ByProblem(ScriptedBackend):
    """Answers from the problem text in the context: "always" right, "never" wrong,
    "half" right on its even-numbered sampled episodes and at temperature 0. Records the
    sampling parameters of every call."""

    def __init__(self, tok, consult_first: bool = False):
        self.tok, self.consult_first = tok, consult_first
        self.params: list = []
        self.seen_half = 0
        super().__init__(self._script, (tok.eos_token_id,))

    def generate(self, contexts, max_new_tokens, params):
        self.params.append(params)
        self._temperature = params.temperature
        return super().generate(contexts, max_new_tokens, params)

    def _script(self, ctx, call):
        text = self.tok.decode(ctx, skip_special_tokens=True)
        if self.consult_first and TAGS.consult_close not in text:
            return self._ids("let me ask <consult><query>what is it</query></consult>")
        if "11+22" in text:
            answer = "33"
        elif "33+44" in text:
            answer = "78"
        else:
            right = self._temperature == 0 or self.seen_half % 2 == 0
            self.seen_half += self._temperature > 0
            answer = "121" if right else "120"
        return self._ids(f"thinking <answer>{answer}</answer>")

    def _ids(self, text):
        return self.tok.encode(text, add_special_tokens=False)


def run(tok, backend, **kw):
    args = dict(rollout=CFG, n=4, ks=(1, 2, 4), turn_budget=3, scorer="integer", batch_size=5, backend=backend)
    return evaluate_policy(None, tok, PROBLEMS, **{**args, **kw})


def test_exact_metrics_from_a_scripted_policy(tok):
    backend = ByProblem(tok)
    res = run(tok, backend, temperature=0.7)
    m = res.metrics
    assert m["eval/avg@n"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert m["eval/pass@1"] == pytest.approx(0.5)
    assert m["eval/pass@2"] == pytest.approx((1 + 0 + pass_at_k(4, 2, 2)) / 3)
    assert m["eval/pass@4"] == pytest.approx(2 / 3)
    assert m["eval/var"] == pytest.approx(0.25 / 3)
    assert m["eval/greedy_acc"] == pytest.approx(2 / 3)
    assert m["eval/n"] == 4 and m["eval/problems"] == 3
    assert m["eval/answered"] == 1.0 and m["eval/well_formed"] == 1.0
    assert m["eval/turns"] == 1.0 and m["eval/consult_attempts"] == 0.0
    # 12 sampled episodes in batches of 5, then 3 greedy ones in one batch
    temps = [p.temperature for p in backend.params]
    assert temps == [0.7, 0.7, 0.7, 0.0]
    assert len(res.records) == 15
    half = [r for r in res.records if r["problem_id"] == "half" and not r["greedy"]]
    assert [(r["sample"], r["score"], r["uid"]) for r in half] == [
        (0, 1.0, "eval-half-0"), (1, 0.0, "eval-half-1"), (2, 1.0, "eval-half-2"), (3, 0.0, "eval-half-3")]
    greedy = [r for r in res.records if r["greedy"]]
    assert [(r["uid"], r["sample"], r["answer"], r["gold"]) for r in greedy] == [
        ("eval-always-greedy", None, "33", "33"), ("eval-never-greedy", None, "78", "77"),
        ("eval-half-greedy", None, "121", "121")]
    assert all(r["lock"] == "forbid" and r["stop_reason"] == "answer" and r["policy_tokens"] > 0 for r in res.records)


def test_refuse_counts_attempts_and_calls_no_expert(tok):
    backend = ByProblem(tok, consult_first=True)
    res = run(tok, backend, lock="refuse", greedy=False)
    m = res.metrics
    assert m["eval/consult_attempts"] == 1.0 and m["eval/consult_rate"] == 1.0
    assert m["eval/turns"] == 2.0
    assert m["eval/avg@n"] == pytest.approx(0.5)  # the answers after the refusal still count
    assert all(r["consults"] == 1 and r["queries"] == 1 and r["accepted_calls"] == 0 for r in res.records)
    assert all(p.forbidden == () for p in backend.params)
    assert "eval/greedy_acc" not in m


def test_refused_episode_sees_the_unavailable_observation(tok):
    from eapo.protocol.render import REFUSAL

    backend = ByProblem(tok, consult_first=True)
    seen: list[str] = []
    inner = backend._script

    def spy(ctx, call):
        seen.append(tok.decode(ctx, skip_special_tokens=True))
        return inner(ctx, call)

    backend.script = spy
    run(tok, backend, lock="refuse", n=1, ks=(1,), greedy=False)
    second_turns = [s for s in seen if TAGS.consult_close in s]
    assert len(second_turns) == 3 and all(REFUSAL in s for s in second_turns)


def test_forbid_bans_the_consult_tag_in_decoding(tok):
    backend = ByProblem(tok)
    run(tok, backend, lock="forbid")
    assert backend.params and all(p.forbidden == (TAGS.consult_open, TAGS.consult_close) for p in backend.params)


def test_both_locks_prefix_their_metrics(tok):
    res = run(tok, ByProblem(tok, consult_first=True), lock="both", greedy=False)
    assert {r["lock"] for r in res.records} == {"forbid", "refuse"} and len(res.records) == 24
    assert not any(k.startswith("eval/") for k in res.metrics)
    # the scripted policy ignores the ban, so "forbid" sees the attempt too; what differs is
    # what reached the backend
    assert res.metrics["eval_forbid/avg@n"] == res.metrics["eval_refuse/avg@n"] == pytest.approx(0.5)
    assert res.metrics["eval_refuse/consult_attempts"] == 1.0
    assert "eval_forbid/pass@4" in res.metrics and "eval_refuse/pass@4" in res.metrics


def test_deterministic(tok):
    a, b = run(tok, ByProblem(tok)), run(tok, ByProblem(tok))
    assert a.metrics == b.metrics and a.records == b.records


@pytest.mark.parametrize("kw", [dict(lock="open"), dict(n=2), dict(ks=(0,)), dict(batch_size=0)])
def test_rejects_bad_settings(tok, kw):
    with pytest.raises(ValueError):
        run(tok, ByProblem(tok), **kw)


def test_rejects_duplicate_problem_ids(tok):
    with pytest.raises(ValueError, match="unique"):
        evaluate_policy(None, tok, [PROBLEMS[0], PROBLEMS[0]], rollout=CFG, n=1, ks=(1,), turn_budget=2,
                        scorer="integer", backend=ByProblem(tok))


@pytest.mark.slow
def test_smoke_on_a_tiny_random_model(tmp_path):
    spec = TinyModelSpec(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=128)
    model, tok = load_policy(build_tiny_model(tmp_path / "policy", spec))
    model.train()
    seen: list[tuple[bool, bool]] = []
    hook = model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training, torch.is_grad_enabled())))
    problems = ChainTask().split("test")[:5]
    cfg = RolloutConfig(tokens_per_turn=12, max_policy_tokens=24, max_completion_tokens=64)
    res = evaluate_policy(model, tok, problems, rollout=cfg, lock="both", n=2, ks=(1, 2), turn_budget=2,
                          scorer="integer", batch_size=4, seed=1)
    hook.remove()
    assert model.training  # restored
    assert seen and all(mode == (False, False) for mode in seen)  # eval mode, no gradient
    assert len(res.records) == 2 * (5 * 2 + 5)
    for prefix in ("eval_forbid/", "eval_refuse/"):
        m = {k[len(prefix):]: v for k, v in res.metrics.items() if k.startswith(prefix)}
        for name in ("avg@n", "pass@1", "pass@2", "greedy_acc", "answered", "well_formed", "consult_rate"):
            assert 0.0 <= m[name] <= 1.0, name
        assert m["pass@1"] <= m["pass@2"] and 0.0 <= m["var"] <= 0.25
        assert 1.0 <= m["turns"] <= 2.0 and 0 < m["policy_tokens"] <= 24
        assert m["n"] == 2 and m["problems"] == 5
    assert res.metrics["eval_forbid/consult_attempts"] == 0.0  # the tag cannot be generated
    assert all(r["accepted_calls"] == 0 for r in res.records)
