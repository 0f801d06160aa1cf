"""Episodes through verl 0.9.1's real rollout code on CPU, with the real Qwen2 tokenizer.

The only stand-in is the vLLM server actor (verl_harness.ScriptedServer, a scripted
policy). Real: verl's trainer config (composed from ppo_trainer.yaml), `AgentLoopWorker`
built by its own `__init__` (HFModelConfig reading the model folder, the agent-loop
registry loaded from our agent_loop.yaml, the tools from our consult_tool.yaml),
`generate_sequences` on a `DataProto` (trajectory info, our step injection, hydra
instantiation of the agent loop, `_agent_loop_postprocess` padding, `_postprocess` into
the training batch with `rm_scores`), `LLMServerClient.generate`, `TokenOutput`,
`AgentLoopOutput`, and for the tool path verl's `ToolAgentLoop` with its hermes tool
parser and continuous-token builder."""

from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pytest

pytest.importorskip("verl", reason="verl is not installed (make test-verl builds .venv-verl with it)")

from verl_harness import IM_END, LOGPROB, ModelServer, ScriptedClient, ScriptedServer  # noqa: E402

from eapo.integrations.verl.core import compute_score  # noqa: E402


def eapo_script(text: str) -> str:
    """Consult on the first turn; answer with the expert's number after its reply."""
    done = text.split("<|im_start|>assistant\n")[-1]
    question = text.split("<|im_start|>user\n")[-1].split("<|im_end|>")[0]
    if "<expert" not in done:
        return f"I will ask. <consult><query>{question}</query></consult>"
    got = re.findall(r'<expert id="\d">(-?\d+)</expert>', done)
    return f" So it is <answer>{got[0] if got else 0}</answer>"


def batch_of(questions, golds, agent_name, copies=2, step=1, validate=False):
    from verl.protocol import DataProto

    rows = [(q, g, i) for i, (q, g) in enumerate(zip(questions, golds)) for _ in range(copies)]
    nt = {
        "raw_prompt": np.array([[{"role": "user", "content": q}] for q, _, _ in rows] + [None], dtype=object)[:-1],
        "reward_model": np.array([{"style": "rule", "ground_truth": g} for _, g, _ in rows], dtype=object),
        "extra_info": np.array([{"index": f"p{i}", "split": "train"} for _, _, i in rows], dtype=object),
        "index": np.array([i for _, _, i in rows]),
        "agent_name": np.array([agent_name] * len(rows), dtype=object),
        "data_source": np.array(["eapo"] * len(rows), dtype=object),
    }
    return DataProto.from_dict(non_tensors=nt, meta_info={"global_steps": step, "validate": validate})


def make_worker(verl_config, tok, script, eos):
    from eapo.integrations.verl.agent_loop import EAPOAgentLoopWorker

    r = verl_config.actor_rollout_ref.rollout
    server = ScriptedServer(tok, script, eos, max_model_len=r.prompt_length + r.response_length,
                            prompt_length=r.prompt_length, response_length=r.response_length, global_steps=1)
    client = ScriptedClient(verl_config, server)
    return EAPOAgentLoopWorker(verl_config, client), client, server


def rows(out, tok):
    """Per sample: (response ids, response mask, rollout log-probs, rm score at the last
    token) without verl's padding."""
    b = out.batch
    plen = b["prompts"].shape[1]
    for i in range(len(out)):
        n = int(b["attention_mask"][i, plen:].sum())
        yield (b["responses"][i, :n].tolist(), b["response_mask"][i, :n].tolist(),
               b["rollout_log_probs"][i, :n].tolist(), b["rm_scores"][i, :n].tolist() if "rm_scores" in b.keys() else None)


def test_eapo_agent_loop_through_verls_worker(verl_config, qwen2_tok):
    tok = qwen2_tok
    worker, client, server = make_worker(verl_config, tok, eapo_script, [IM_END, tok.eos_token_id])
    out = asyncio.run(worker.generate_sequences(batch_of(["12+30", "40+1"], ["42", "41"], "eapo_agent")))
    assert len(out) == 4 and out.batch["responses"].shape[1] == 400 and out.batch["prompts"].shape[1] == 512

    for i, (ids, mask, lps, rm) in enumerate(rows(out, tok)):
        gold = ["42", "41"][i // 2]
        policy = [t for t, m in zip(ids, mask) if m]
        outside = [t for t, m in zip(ids, mask) if not m]
        # the policy's tokens are what the server generated (cut at the stop strings), in order
        assert tok.decode(policy, skip_special_tokens=False) == (
            f"I will ask. <consult><query>{['12+30', '40+1'][i // 2]}</query></consult>"
            f" So it is <answer>{gold}</answer>")
        # the expert's reply, and only it, has mask 0 (it is not the policy's; no loss on it)
        assert f'<expert id="0">{gold}</expert>' in tok.decode(outside, skip_special_tokens=False)
        assert "<expert" not in tok.decode(policy, skip_special_tokens=False)
        assert mask[0] == 1 and mask[-1] == 1 and 0 in mask
        # rollout log-probs: the server's on policy tokens, 0 on expert tokens
        assert all(lp == LOGPROB for lp, m in zip(lps, mask) if m)
        assert all(lp == 0.0 for lp, m in zip(lps, mask) if not m)
        # EAPO's reward from the policy's tokens, on the last response token, as verl trains on it
        assert rm[-1] == pytest.approx(1.0) and not any(rm[:-1])
    nt = out.non_tensor_batch
    assert list(nt["eapo_step"]) == [1] * 4 and list(nt["eapo_rho"]) == [1.0] * 4
    assert list(nt["eapo_accepted"]) == [1] * 4
    # the weight versions each trajectory was generated with, as verl's staleness control reads them
    assert list(nt["min_global_steps"]) == [1] * 4 and list(nt["max_global_steps"]) == [1] * 4
    # two generations per episode (consult turn, answer turn), sticky request ids s{step}-{problem}-{copy}
    assert sorted(a["request_id"] for a in client.acquired) == sorted(
        f"s1-p{i}-{n}" for i in range(2) for n in range(2) for _ in range(2))
    # what reached "vLLM": verl's sampling params (temperature, top-p, top-k) plus ours
    sp = server.calls[0]["received"]
    assert sp["temperature"] == verl_config.actor_rollout_ref.rollout.temperature and sp["logprobs"] is True
    assert IM_END in sp["stop_token_ids"] and tok.eos_token_id in sp["stop_token_ids"]
    # the prompt was built with Qwen2's chat template, the protocol's system prompt in it
    prompt = tok.decode(out.batch["prompts"][0][out.batch["attention_mask"][0, :512].bool()].tolist(),
                        skip_special_tokens=False)
    assert prompt.startswith("<|im_start|>system\nSolve the problem.") and "<consult>" in prompt
    assert prompt.endswith("<|im_start|>user\n12+30<|im_end|>\n<|im_start|>assistant\n")


def test_turn_ended_by_im_end_ends_the_episode(verl_config, qwen2_tok):
    """Qwen2's turn ends with <|im_end|>, which is not its tokenizer's eos_token
    (<|endoftext|>) but is in the generation config's EOS ids, where vLLM stops. The episode
    must end there (stop "eos"), not read it as a length cut and generate past it."""
    tok = qwen2_tok
    worker, client, server = make_worker(verl_config, tok, lambda text: "I do not know.", [IM_END, tok.eos_token_id])
    out = asyncio.run(worker.generate_sequences(batch_of(["12+30"], ["42"], "eapo_agent", copies=1)))
    [(ids, mask, _, rm)] = list(rows(out, tok))
    assert tok.decode(ids, skip_special_tokens=False) == "I do not know.<|im_end|>" and all(mask)
    assert len(server.calls) == 1 and out.non_tensor_batch["eapo_stop"][0] == "eos"


def test_validation_batch_is_locked(verl_config, qwen2_tok):
    tok = qwen2_tok
    worker, _, _ = make_worker(verl_config, tok, eapo_script, [IM_END, tok.eos_token_id])
    out = asyncio.run(worker.generate_sequences(batch_of(["1+2"], ["3"], "eapo_agent", copies=1, step=9,
                                                         validate=True)))
    [(ids, mask, _, rm)] = list(rows(out, tok))
    assert "expert unavailable" in tok.decode([t for t, m in zip(ids, mask) if not m])
    assert out.non_tensor_batch["eapo_rho"][0] == 0.0 and out.non_tensor_batch["eapo_accepted"][0] == 0


def tool_script(text: str) -> str:
    """Function calling through Qwen2's template (hermes): call consult, then answer."""
    question = text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
    if "<expert" not in text:  # no tool reply yet
        call = {"name": "consult", "arguments": {"queries": [question]}}
        return f"Let me ask.\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
    got = re.findall(r'<expert id="\d">(-?\d+)</expert>', text)
    return f"So it is <answer>{got[0] if got else 0}</answer>"


def test_consult_tool_in_verls_tool_agent_loop(verl_config, qwen2_tok):
    tok = qwen2_tok
    worker, client, server = make_worker(verl_config, tok, tool_script, [IM_END, tok.eos_token_id])
    assert [t.name for t in worker.tools] == ["consult"]
    out = asyncio.run(worker.generate_sequences(batch_of(["12+30"], ["42"], "tool_agent", copies=2)))
    for ids, mask, lps, _ in rows(out, tok):
        text = tok.decode(ids, skip_special_tokens=False)
        outside = tok.decode([t for t, m in zip(ids, mask) if not m], skip_special_tokens=False)
        policy = tok.decode([t for t, m in zip(ids, mask) if m], skip_special_tokens=False)
        assert "Error executing tool" not in text  # verl turns a tool's exception into this text
        assert '<expert id="0">42</expert>' in outside and "<|im_start|>tool" in outside  # this template's tool turn
        assert "<expert" not in policy and "<tool_call>" in policy and "<answer>42</answer>" in policy
        # verl scores the decoded response on this path: compute_score credits the policy's answer
        response = tok.decode(ids, skip_special_tokens=True)
        assert compute_score("eapo", response, "42") == 1.0
        assert compute_score("eapo", response.replace("<answer>42</answer>", "no idea"), "42") == 0.0
    # the worker gave the tool the step: rho_1 = 1 accepted the query
    assert all(n == 2 for n in [len(server.calls) // 2])
    assert "tool_rewards" in out.non_tensor_batch


def test_episodes_of_a_real_model_keep_its_log_probs_aligned(verl_config, qwen2_tok, qwen2_model_dir):
    """A real (random-init, 1-layer) Qwen2 model with the real vocabulary samples the
    policy's tokens: in verl's batch, every mask-1 token's rollout log-prob is the model's
    log-prob of that token after the prompt and the response before it (recomputed in one
    forward pass), through several turns and verl's padding."""
    import torch
    from transformers import AutoModelForCausalLM

    from eapo.integrations.verl.agent_loop import EAPOAgentLoopWorker

    tok = qwen2_tok
    model = AutoModelForCausalLM.from_pretrained(str(qwen2_model_dir)).eval()
    r = verl_config.actor_rollout_ref.rollout
    server = ModelServer(tok, model, [IM_END, tok.eos_token_id], seed=1, max_model_len=r.prompt_length + r.response_length,
                         prompt_length=r.prompt_length, response_length=r.response_length, global_steps=1)
    worker = EAPOAgentLoopWorker(verl_config, ScriptedClient(verl_config, server))
    out = asyncio.run(worker.generate_sequences(batch_of(["12+30"], ["42"], "eapo_agent", copies=2)))
    b, plen = out.batch, out.batch["prompts"].shape[1]
    assert len(server.calls) >= 2
    assert all(n >= 2 for n in out.non_tensor_batch["eapo_turns"])  # seed 1: 3 turns of 64 tokens each
    for i, (ids, mask, lps, rm) in enumerate(rows(out, tok)):
        prompt = b["prompts"][i][b["attention_mask"][i, :plen].bool()].tolist()
        with torch.no_grad():
            logits = model(torch.tensor([prompt + ids])).logits[0].float()
        ref = torch.log_softmax(logits[len(prompt) - 1:-1], -1).gather(1, torch.tensor(ids)[:, None])[:, 0]
        assert sum(mask) > 0
        for j, (m, lp) in enumerate(zip(mask, lps)):
            assert lp == pytest.approx(float(ref[j]), abs=1e-4) if m else lp == 0.0
    # the episodes ran to a stop of their own (budget, EOS) within verl's response length
    assert all(s in ("token_budget", "turn_budget", "eos", "answer") for s in out.non_tensor_batch["eapo_stop"])
