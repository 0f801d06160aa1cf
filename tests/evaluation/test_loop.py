"""The one evaluation loop (eapo.evaluation.loop) behind the three evaluators.

For the same problems, seed, lock and batches, the training-time evaluation
(`evaluate_policy`), `eapo eval` (`evaluate_benchmark`) and the compare workflow row
(`evaluate_with_experts`) give the very same episodes, each the one the loop rolls. A real
tiny model samples at temperature 1, so equality is not luck; a scripted policy that
consults covers the expert calls. Also: the model's mode is restored when an evaluation
fails, and no backend and no model is refused.
"""

from __future__ import annotations

import re

import pytest

from eapo.evaluation.bench_eval import BenchEvalConfig, evaluate_benchmark
from eapo.evaluation.benchmarks import load_benchmark
from eapo.evaluation.evaluate import evaluate_policy
from eapo.evaluation.loop import EvalLoop, default_backend, evaluating, run_record
from eapo.rollout.config import RolloutConfig
from eapo.rollout.fake_backend import ScriptedBackend

SMALL = RolloutConfig(system_prompt="", tokens_per_turn=8, max_policy_tokens=16, max_completion_tokens=64)
# what both record formats hold of an episode
SHARED = ("uid", "sample", "greedy", "answer", "score", "well_formed", "consults", "queries", "accepted_calls",
          "turns", "policy_tokens", "stop_reason")


def _episodes(records):
    return sorted(tuple(r[k] for k in SHARED) for r in records)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy

    spec = TinyModelSpec(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=128)
    return load_policy(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


@pytest.fixture(scope="module")
def chain():
    return load_benchmark("chain", limit=4)


def test_expert_free_entry_points_draw_the_loops_episodes(tiny, chain):
    model, tok = tiny
    # one block of all four problems: eapo eval batches exactly as the training-time evaluation
    common = dict(n=2, turn_budget=2, seed=3, batch_size=8)
    loop = EvalLoop(default_backend(model, tok, None, "test"), tok, SMALL, consult_mode="refuse", temperature=1.0,
                    greedy=True, scorer="integer", **common)
    with evaluating(model):
        rolled = loop.roll(chain)
    direct = [run_record(ep, "refuse", sample) for ep, sample in rolled]
    policy = evaluate_policy(model, tok, chain, rollout=SMALL, lock="refuse", ks=(1, 2), scorer="integer", **common)
    bench = evaluate_benchmark(BenchEvalConfig("chain", model="tiny", ks=(1, 2), limit=4, rollout=SMALL,
                                               lock="refuse", **common), model=model, tokenizer=tok)
    assert policy.records == direct
    assert _episodes(bench.records) == _episodes(direct)
    assert len({tuple(ep.completion_ids) for ep, sample in rolled if sample is not None}) > 1  # really sampled
    assert {k: bench.summary[k] for k in policy.metrics} == policy.metrics


def _consulting(tok):
    def script(ctx, call):  # ask for the whole chain, then answer with the reply
        text = tok.decode(ctx)
        replies = re.findall(r'<expert id="\d+">(.*?)</expert>', text)
        if replies:
            return tok.encode(f" <answer>{replies[-1]}</answer>", add_special_tokens=False)
        question = text.split("user\n")[-1].split("<|im_end|>")[0]
        return tok.encode(f"<consult><query>{question}</query></consult>", add_special_tokens=False)

    return ScriptedBackend(script, (tok.eos_token_id,))


@pytest.mark.parametrize("policy", ["tiny", "scripted"])
def test_experts_open_entry_points_draw_the_loops_episodes(tiny, chain, policy):
    from eapo.comparison.with_experts import evaluate_with_experts
    from eapo.config import load_config
    from eapo.evaluation.benchmarks import builtin_task
    from eapo.experts.oracle import OracleExpert
    from eapo.experts.pool import ExpertPool
    from eapo.training.config import ExpertsConfig, TrainConfig

    model, tok = tiny
    backend = _consulting(tok) if policy == "scripted" else None
    oracle = builtin_task("chain").oracle_answer
    tokens = (8, 16, 64) if policy == "tiny" else (256, 512, 1024)  # the script's consult must fit in a turn
    cfg = load_config(TrainConfig, None, ["eval.n=2", "eval.k=[1,2]", "turn_budget.train=3", "turn_budget.eval=2",
                                          "seed=4", *(f"rollout.{name}={value}" for name, value in zip(
                                              ("tokens_per_turn", "max_policy_tokens", "max_completion_tokens"),
                                              tokens))])
    metrics, records = evaluate_with_experts(cfg, model, tok, chain, ExpertPool([OracleExpert(oracle)]), "integer",
                                             backend=backend)
    bench = evaluate_benchmark(BenchEvalConfig("chain", model="tiny", n=2, ks=(1, 2), limit=4, rollout=cfg.rollout,
                                               turn_budget=3, seed=4, experts=ExpertsConfig()),
                               model=model, tokenizer=tok, backend=backend, pool=ExpertPool([OracleExpert(oracle)]))
    assert _episodes(bench.records) == _episodes(records)
    assert all(r["lock"] == "open" for r in records)
    if policy == "scripted":
        assert metrics["eval/expert_calls"] == bench.summary["eval/expert_calls"] == 1.0
    for name in ("avg@n", "pass@2", "greedy_acc", "consult_rate", "turns", "policy_tokens"):
        assert metrics[f"eval/{name}"] == bench.summary[f"eval/{name}"], name


def test_a_failing_evaluation_puts_the_model_back_in_training_mode(tiny):
    model, _ = tiny
    model.train()
    with pytest.raises(RuntimeError), evaluating(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training
    model.eval()


def test_no_backend_and_no_model_is_refused():
    with pytest.raises(ValueError, match="evaluate_policy needs a model, or a backend"):
        default_backend(None, None, None, "evaluate_policy")
