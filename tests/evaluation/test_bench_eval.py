"""`eapo eval`'s library path (eapo.evaluation.bench_eval) end to end:

- code: canned completions of a scripted policy go through the same path as a model's
  (protocol answer -> completion -> sandbox): the canonical solution passes in every form
  the reader accepts, a wrong body fails, an endless loop times out; records and summary
  exact (needs ../shared/data, skipped without it);
- the expert-assisted workflow: a scripted policy that consults the built-in oracle on the
  built-in task, with its pool built from an `experts:` YAML through `build_pool`;
  consults, expert calls and expert tokens per item and in the summary;
- resuming: with the real tiny model sampling at temperature 1, an evaluation interrupted by
  an exception, by a smaller --limit, or by a crash in the middle of a write, continued
  with the same settings, ends with exactly the items and summary of an uninterrupted run;
  a changed configuration is refused.
"""

from __future__ import annotations

import json
import re

import pytest

from eapo.evaluation.bench_eval import BenchEvalConfig, evaluate_benchmark
from eapo.evaluation.benchmarks import load_benchmark, resolve_spec
from eapo.evaluation.itemstore import ResumeError
from eapo.evaluation.metrics import pass_at_k
from eapo.models.tokenizer import build_tokenizer
from eapo.protocol.tags import Tags
from eapo.rollout.config import RolloutConfig
from eapo.rollout.fake_backend import ScriptedBackend

TAGS = Tags()
BIG = RolloutConfig(system_prompt="", tokens_per_turn=4096, max_policy_tokens=4096, max_completion_tokens=8192)



@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TAGS)


class PerProblem(ScriptedBackend):
    """Calls `answer(context_text, sample, greedy)` for every context; `sample` counts the
    contexts seen for the same prompt (sampled episodes come in sample order)."""

    def __init__(self, tok, answer):
        self.tok, self.answer = tok, answer
        self.seen: dict[str, int] = {}
        self.greedy = False
        super().__init__(self._script, (tok.eos_token_id,))

    def generate(self, contexts, max_new_tokens, params):
        self.greedy = params.temperature == 0
        return super().generate(contexts, max_new_tokens, params)

    def _script(self, ctx, call):
        text = self.tok.decode(ctx, skip_special_tokens=False)
        key = text[:2000]
        j = self.seen.get(key, 0)
        if not self.greedy:
            self.seen[key] = j + 1
        return self.tok.encode(self.answer(text, j, self.greedy), add_special_tokens=False)


# ------------------------------------------------------------------------------ code


def _humaneval(limit):
    try:
        return load_benchmark("humaneval", limit=limit)
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"benchmark data not available: {e}")


def test_code_benchmark_scores_canned_completions_in_the_sandbox(tok):
    problems = {p.meta["entry_point"]: p for p in _humaneval(2)}

    def answer(text, j, greedy):
        entry = next(e for e in problems if f"def {e}(" in text)
        p = problems[entry]
        body = p.meta["canonical_solution"]
        function = p.question[p.question.index(f"def {entry}("):] + body
        if greedy:  # the body alone; the parser strips its first line's indent
            return f"<answer>{body}</answer>"
        return [
            f"Here it is.<answer>```python\n{function}```</answer>",  # whole function, fenced
            "<answer>    return None</answer>",  # wrong body
            f"```python\n{function}```" + tok.eos_token,  # no answer block: a fence at EOS
            "<answer>while True:\n        pass</answer>",  # endless loop
        ][j]

    cfg = BenchEvalConfig("humaneval", model="scripted", n=4, ks=(1, 2, 4), limit=2, rollout=BIG,
                          turn_budget=2, code_timeout_s=1.0)
    res = evaluate_benchmark(cfg, tokenizer=tok, backend=PerProblem(tok, answer))
    rows = [(r["sample"], r["score"], r["reason"], r["code_form"], r["answer_source"]) for r in res.records]
    per_problem = [
        (0, 1.0, "passed", "function", "answer"),
        (1, 0.0, "failed", "body", "answer"),
        (2, 1.0, "passed", "function", "fence"),
        (3, 0.0, "timeout", "body", "answer"),
        (None, 1.0, "passed", "body", "answer"),
    ]
    assert rows == per_problem * 2
    assert [r["id"] for r in res.records] == ["HumanEval/0"] * 5 + ["HumanEval/1"] * 5
    first = res.records[0]
    assert first["extracted"].startswith("\ndef has_close_elements(") and first["gold"] is None
    assert res.records[2]["answer"] is None and res.records[2]["stop_reason"] == "eos"
    s = res.summary
    assert (s["benchmark"], s["scorer"], s["lock"], s["problems"]) == ("humaneval", "code", "forbid", 2)
    assert s["eval/avg@n"] == 0.5 and s["eval/pass@1"] == 0.5
    assert s["eval/pass@2"] == pytest.approx(pass_at_k(4, 2, 2)) and s["eval/pass@4"] == 1.0
    assert s["eval/var"] == 0.25 and s["eval/greedy_acc"] == 1.0
    assert s["eval/answered"] == 0.75 and s["eval/expert_calls_total"] == 0.0


# ------------------------------------------------------------------------------ experts


def test_expert_workflow_records_consults_calls_and_tokens(tok, tmp_path, caplog):
    """The policy asks the whole chain, then answers with the oracle's reply (built from YAML)."""
    from eapo.assembly.pool import build_workflow_pool
    from eapo.evaluation.workflow import load_experts_config

    (tmp_path / "experts.yaml").write_text("experts:\n  kind: oracle\n  replicas: 2\nrl:\n  steps: 3\n")
    problems = load_benchmark("chain", limit=3)
    questions = {p.question for p in problems}

    def answer(text, j, greedy):
        replies = re.findall(r'<expert id="\d+">(.*?)</expert>', text)
        if replies:
            return f"<answer>{replies[-1]}</answer>"
        q = next(q for q in questions if q in text)
        return f"<consult><query>{q}</query></consult>"

    cfg = BenchEvalConfig("chain", model="scripted", n=2, ks=(1, 2), rollout=BIG, turn_budget=3, limit=3,
                          experts=load_experts_config(tmp_path / "experts.yaml"))
    with pytest.raises(ValueError, match="pass the pool"):  # the pool is built above evaluation
        evaluate_benchmark(cfg, tokenizer=tok, backend=PerProblem(tok, answer))
    pool = build_workflow_pool(cfg.experts, resolve_spec("chain"), policy="scripted", seed=cfg.seed)
    with caplog.at_level("INFO", logger="eapo.progress"):
        res = evaluate_benchmark(cfg, tokenizer=tok, backend=PerProblem(tok, answer), pool=pool, out=tmp_path / "out")
    # not a terminal: the progress bar is log lines with count, rate and ETA
    lines = [r.getMessage() for r in caplog.records if r.name == "eapo.progress"]
    assert lines[0].startswith("eval chain: 0/3 (0%)") and "ETA" in lines[0]
    assert lines[-1].startswith("eval chain: 3/3 (100%)") and "avg@n=1.000" in lines[-1]
    assert len(res.records) == 3 * 3 and all(r["mode"] == "experts" for r in res.records)
    for r, p in zip(res.records, [p for p in problems for _ in range(3)]):
        # the oracle counts characters: problem + query in, the reply out
        expected = (len(p.question) * 2, len(p.answer))
        assert (r["score"], r["consults"], r["queries"], r["expert_calls"], r["accepted_calls"]) == (1.0, 1, 1, 1, 1)
        assert (r["expert_prompt_tokens"], r["expert_completion_tokens"]) == expected
        assert r["expert_tokens"] == sum(expected) and r["turns"] == 2 and r["observation_tokens"] > 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["lock"] == "experts" and s["experts"]["kind"] == "oracle" and s["experts"]["replicas"] == 2
    assert s["eval/avg@n"] == 1.0 and s["eval/consult_rate"] == 1.0 and s["eval/expert_calls"] == 1.0
    assert s["eval/expert_calls_total"] == 9.0
    assert s["eval/expert_tokens_total"] == sum(r["expert_tokens"] for r in res.records)
    assert s["eval/expert_tokens"] == pytest.approx(
        sum(r["expert_tokens"] for r in res.records if not r["greedy"]) / 6)


def test_experts_config_errors_name_the_problem(tmp_path):
    from eapo.config import ConfigError
    from eapo.evaluation.workflow import load_experts_config

    (tmp_path / "a.yaml").write_text("rl:\n  steps: 3\n")
    with pytest.raises(ConfigError, match="no `experts:` section"):
        load_experts_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("experts:\n  knd: oracle\n")
    with pytest.raises(ConfigError, match="knd"):
        load_experts_config(tmp_path / "b.yaml")


# ------------------------------------------------------------------------------ resume


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from eapo.models.build import TinyModelSpec, build_tiny_model, load_policy

    spec = TinyModelSpec(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=128)
    return load_policy(build_tiny_model(tmp_path_factory.mktemp("m") / "policy", spec))


SMALL = RolloutConfig(system_prompt="", tokens_per_turn=8, max_policy_tokens=16, max_completion_tokens=64)


def _cfg(**kw):
    base = dict(benchmark="chain", model="tiny", n=2, ks=(1, 2), limit=4, batch_size=4, rollout=SMALL,
                turn_budget=2, seed=3, lock="refuse")
    return BenchEvalConfig(**{**base, **kw})


class Interrupt(RuntimeError):
    pass


class FailingBackend:
    """The HF backend, raising on generation call number `fail_at` (an interruption)."""

    def __init__(self, inner, fail_at):
        self.inner, self.fail_at, self.calls = inner, fail_at, 0
        self.eos_token_ids = inner.eos_token_ids

    def generate(self, contexts, max_new_tokens, params):
        self.calls += 1
        if self.calls == self.fail_at:
            raise Interrupt("simulated crash")
        return self.inner.generate(contexts, max_new_tokens, params)


def _files(out):
    return (out / "items.jsonl").read_text(), json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    model, tok = tiny
    out = tmp_path_factory.mktemp("ref") / "out"
    evaluate_benchmark(_cfg(), model=model, tokenizer=tok, out=out)
    return _files(out)


def test_uninterrupted_reference_is_sampled_and_complete(reference):
    items, summary = reference
    rows = [json.loads(line) for line in items.splitlines()]
    assert len(rows) == 4 * 3  # 4 problems, 2 samples + greedy
    assert summary["eval/problems"] == 4 and summary["problems"] == 4
    # sampling at temperature 1 really differs between samples (else equality proves little)
    assert len({r["policy_tokens"] for r in rows}) > 1 or len({r["answer"] for r in rows}) > 1


def test_resume_after_an_exception_equals_an_uninterrupted_run(tiny, reference, tmp_path):
    from eapo.rollout.hf_backend import HFBackend

    model, tok = tiny
    out = tmp_path / "out"
    done = []
    # blocks of 2 problems; each block takes 2 (sampled) + 2 (greedy) generation calls with 2 turns
    with pytest.raises(Interrupt):
        evaluate_benchmark(_cfg(), model=model, tokenizer=tok, out=out,
                           backend=FailingBackend(HFBackend(model, tok), fail_at=6),
                           on_block=lambda d, t: done.append(d))
    assert done == [2]
    assert len((out / "items.jsonl").read_text().splitlines()) == 2 * 3 and not (out / "summary.json").exists()
    res = evaluate_benchmark(_cfg(), model=model, tokenizer=tok, out=out)
    assert res.resumed_problems == 2
    assert _files(out) == reference


def test_resume_after_a_smaller_limit_equals_an_uninterrupted_run(tiny, reference, tmp_path):
    model, tok = tiny
    out = tmp_path / "out"
    evaluate_benchmark(_cfg(limit=3), model=model, tokenizer=tok, out=out)  # blocks [0, 1], [2]
    res = evaluate_benchmark(_cfg(), model=model, tokenizer=tok, out=out)  # [2] is rerun with 3, as [2, 3]
    assert res.resumed_problems == 2
    assert _files(out) == reference


def test_torn_write_in_a_block_is_dropped_and_the_block_rerun(tiny, reference, tmp_path):
    model, tok = tiny
    out = tmp_path / "out"
    out.mkdir()
    lines = reference[0].splitlines(keepends=True)
    evaluate_benchmark(_cfg(limit=2), model=model, tokenizer=tok, out=out)  # writes the config + block 0
    # a crash while appending block 1: its first problem's three lines whole (that problem
    # looks complete, but its block is not), the next line cut short
    with (out / "items.jsonl").open("a") as f:
        f.write("".join(lines[6:9]) + lines[9][:25])
    res = evaluate_benchmark(_cfg(), model=model, tokenizer=tok, out=out)
    assert res.resumed_problems == 2
    assert _files(out) == reference


@pytest.fixture(scope="module")
def one_block(tiny, tmp_path_factory):
    model, tok = tiny
    out = tmp_path_factory.mktemp("one") / "out"
    evaluate_benchmark(_cfg(limit=2), model=model, tokenizer=tok, out=out)
    return out


@pytest.mark.parametrize("change, key", [(dict(n=3, ks=(1,)), "n: 2 -> 3"), (dict(temperature=0.5), "temperature"),
                                         (dict(model="other"), "model"), (dict(lock="forbid"), "modes"),
                                         (dict(batch_size=8), "problems_per_block"), (dict(seed=4), "seed")])
def test_changed_configuration_is_refused(tiny, one_block, tmp_path, change, key):
    import shutil

    model, tok = tiny
    out = tmp_path / "out"
    shutil.copytree(one_block, out)
    before = (out / "items.jsonl").read_text()
    with pytest.raises(ResumeError, match=re.escape(key)):
        evaluate_benchmark(_cfg(limit=2, **change), model=model, tokenizer=tok, out=out)
    assert (out / "items.jsonl").read_text() == before
    # a new limit or new ks are not a different evaluation
    res = evaluate_benchmark(_cfg(limit=2, ks=(1,)), model=model, tokenizer=tok, out=out)
    assert res.resumed_problems == 2 and "eval/pass@2" not in res.summary


def test_agrees_with_the_training_time_evaluation(tiny, reference):
    """With blocks that match its batches, `eapo eval` gives exactly the metrics of the
    evaluation a training run reports (eapo.evaluation.evaluate_policy)."""
    from eapo.evaluation import evaluate_policy

    model, tok = tiny
    problems = load_benchmark("chain", limit=4)
    res = evaluate_policy(model, tok, problems, rollout=SMALL, lock="refuse", n=2, ks=(1, 2), turn_budget=2,
                          scorer="integer", seed=3, batch_size=4)
    summary = reference[1]
    assert {k: summary[k] for k in res.metrics} == res.metrics
