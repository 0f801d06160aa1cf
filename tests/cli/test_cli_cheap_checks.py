"""Cheap checks first: every command refuses a wrong argument or configuration before it
builds or loads a model, asks the hub at most once and never retries (issue 16). Each test
makes loading raise, so a check that came too late fails the test instead of slowing it."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from eapo.cli.main import app
from eapo.evaluation.benchmarks import BENCHMARKS

HINT = "pass a local model folder instead"


@pytest.fixture
def no_loading(monkeypatch):
    """Building or loading any model, or starting processes, raises; hub requests are
    counted and fail as they do offline (a connection error)."""
    import huggingface_hub
    import transformers

    import eapo.distributed.launch
    import eapo.models.build
    import eapo.rollout.backends
    import eapo.rollout.demo

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built or loaded (or a process started) before the checks")

    for owner, name in [(eapo.models.build, "load_policy"), (eapo.models.build, "ensure_tiny_models"),
                        (eapo.rollout.backends, "load_backend"), (eapo.rollout.demo, "load_backend"),
                        (eapo.rollout.demo, "ensure_tiny_models"),
                        (transformers.AutoModelForCausalLM, "from_pretrained"),
                        (transformers.AutoTokenizer, "from_pretrained"), (eapo.distributed.launch, "relaunch")]:
        monkeypatch.setattr(owner, name, refuse)
    calls = []

    def offline(repo_id, **kwargs):
        calls.append(repo_id)
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "model_info", offline)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return calls


def _run(*args: str):
    res = CliRunner(env={"COLUMNS": "40"}).invoke(app, list(args))
    assert not isinstance(res.exception, AssertionError), res.exception
    return res


def test_eval_refuses_an_unknown_benchmark_at_once_with_the_known_ones(no_loading):
    res = _run("eval", "--benchmark", "nosuch", "--model", "x")
    assert res.exit_code == 2
    assert res.output.splitlines() == [f"error: unknown benchmark 'nosuch'; valid: {', '.join(BENCHMARKS.names())}"]
    assert no_loading == []  # the benchmark is checked before the model: the hub was not asked


def test_eval_refuses_a_missing_benchmark_file(no_loading, tmp_path):
    res = _run("eval", "--benchmark", str(tmp_path / "mine.jsonl"))
    assert res.exit_code == 2 and res.output.splitlines() == [f"error: no such benchmark file: {tmp_path / 'mine.jsonl'}"]


def test_eval_refuses_bad_options_before_building_the_tiny_policy(no_loading):
    res = _run("eval", "--benchmark", "chain", "-n", "1", "-k", "1,2")
    assert res.exit_code == 2 and "every k must be an int in [1, n=1]" in res.output


@pytest.mark.parametrize("arg", ["/nonexistent", "./nope", "../nope", "~/surely-no-such-eapo-model", "a/b/c"])
def test_eval_says_no_such_model_folder_for_a_path(no_loading, arg):
    res = _run("eval", "--benchmark", "aime2024", "--model", arg)
    assert res.exit_code == 2
    assert res.output.splitlines() == [f"error: no such model folder: {arg}"]
    assert no_loading == []


def test_an_unreachable_hub_id_is_one_line_after_one_request(no_loading):
    res = _run("eval", "--benchmark", "aime2024", "--model", "someorg/somemodel")
    assert res.exit_code == 2
    assert res.output.splitlines() == [
        "error: someorg/somemodel: no such local folder, and the hub cannot be reached (ConnectionError); "
        f"{HINT} (--model /path/to/model)"]
    assert no_loading == ["someorg/somemodel"]  # one request, no retries


def test_offline_mode_does_not_ask_the_hub(no_loading, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = _run("eval", "--benchmark", "aime2024", "--model", "someorg/somemodel")
    assert res.exit_code == 2
    assert res.output.splitlines() == [
        "error: someorg/somemodel: no such local folder, and not in the local hub cache (HF_HUB_OFFLINE is set); "
        f"{HINT} (--model /path/to/model)"]
    assert no_loading == []


@pytest.mark.parametrize("args", [
    ["train", "--model", "/nonexistent"],
    ["train", "--set", "model.policy=/nonexistent"],
    ["train", "--model", "/nonexistent", "--num-processes", "2"],  # refused in the parent, nothing launched
    ["compare", "--model", "/nonexistent"],
    ["rollout", "--policy", "/nonexistent"],
    ["serve-expert", "--model", "/nonexistent"],
])
def test_every_command_with_a_model_checks_it_first(no_loading, args):
    res = _run(*args)
    assert res.exit_code == 2
    assert "error: no such model folder: /nonexistent" in res.output.splitlines()


def test_rollout_names_its_option_for_a_hub_id(no_loading):
    res = _run("rollout", "--policy", "someorg/somemodel")
    assert res.exit_code == 2 and res.output.rstrip().endswith(f"{HINT} (--policy /path/to/model)")


def test_rollout_refuses_an_unknown_expert_before_building_models(no_loading):
    res = _run("rollout", "--expert", "wizard")
    assert res.exit_code == 2
    assert res.output.splitlines() == ["error: --expert: unknown expert 'wizard'; valid: oracle, noisy-oracle, model"]


@pytest.mark.parametrize("command", ["train", "compare"])
def test_configuration_is_checked_before_the_model(no_loading, command):
    res = _run(command, "--set", "rl.stpes=3", "--model", "/nonexistent")
    assert res.exit_code == 2
    assert res.output.startswith("configuration error: unknown key 'rl.stpes'")


def test_train_checks_the_configuration_before_launching_processes(no_loading):
    res = _run("train", "--num-processes", "2", "--set", "rl.steps=0")
    assert res.exit_code == 2 and res.output.startswith("configuration error: rl.steps must be")


@pytest.mark.parametrize("args", [["eval", "--benchmark", "chain"], ["rollout"]])
def test_an_unknown_backend_is_refused_before_any_model(no_loading, args):
    res = _run(*args, "--backend", "tgi")
    assert res.exit_code == 2
    assert res.output.splitlines() == ["error: --backend: unknown backend 'tgi'; valid: hf, vllm"]


def test_compare_checks_eval_backend_in_the_configuration(no_loading):
    res = _run("compare", "--set", "eval.backend=tgi")
    assert res.exit_code == 2 and res.output.startswith("configuration error: eval.backend must be one of")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
@pytest.mark.parametrize("args", [["eval", "--benchmark", "chain", "--backend", "vllm"],
                                  ["rollout", "--backend", "vllm"],
                                  ["compare", "--set", "eval.backend=vllm"]])
def test_vllm_without_vllm_says_how_to_get_it(no_loading, args):
    res = _run(*args)
    assert res.exit_code == 2
    line = " ".join(res.output.split())
    assert "vllm: vLLM is not installed in this environment (pip install vllm (GPU) or" in line
    assert "make venv-vllm" in line


@pytest.mark.parametrize("args", [
    ["eval", "--benchmark", "nosuch", "--model", "x"],
    ["eval", "--benchmark", "aime2024", "--model", "/nonexistent"],
    ["score", "--benchmark", "nosuch", "--predictions", "p.jsonl"],
    ["rollout", "--policy", "/nonexistent"],
    ["rollout", "--expert", "nosuch"],
    ["train", "--set", "rl.stpes=1"],
    ["compare", "--set", "eval.backend=tgi"],
])
def test_a_wrong_argument_is_refused_before_torch_is_imported(args, tmp_path):
    """At once means before torch and transformers load (seconds on these machines, more on
    a busy one): the refusal runs in a fresh interpreter that must never have imported them."""
    import subprocess
    import sys

    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom eapo.cli.main import app\n"
             f"res = CliRunner().invoke(app, {args!r})\n"
             "print(res.exit_code, sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "[]" and out.stdout.split()[0] == "2", out.stdout
