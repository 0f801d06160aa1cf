"""`eapo train --num-processes N`: the command it runs, the arguments the children get, and
the accelerate configs under examples/accelerate/ (DeepSpeed and FSDP are only parsed here:
no GPUs, no DeepSpeed on these machines)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from eapo.cli.main import app
from eapo.distributed.launch import accelerate_command, train_args

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accelerate"


@pytest.mark.parametrize("name, kind, detail", [
    ("ddp.yaml", "MULTI_GPU", None),
    ("deepspeed_zero2.yaml", "DEEPSPEED", ("zero_stage", 2)),
    ("deepspeed_zero3.yaml", "DEEPSPEED", ("zero_stage", 3)),
    ("fsdp.yaml", "FSDP", ("fsdp_version", 2)),
])
def test_example_accelerate_configs_load(name, kind, detail):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(EXAMPLES / name))
    assert cfg.distributed_type.name == kind and cfg.compute_environment.name == "LOCAL_MACHINE"
    if detail:
        section = cfg.deepspeed_config if kind == "DEEPSPEED" else cfg.fsdp_config
        assert section[detail[0]] == detail[1]
    cmd = accelerate_command(4, ["train"], config_file=EXAMPLES / name)
    assert cmd[cmd.index("--config_file") + 1] == str(EXAMPLES / name) and "--multi_gpu" not in cmd


def test_without_a_config_the_torchrun_launcher_is_used_on_a_free_port():
    cmd = accelerate_command(2, ["train", "--quick"])
    assert "--multi_gpu" in cmd  # the only accelerate launcher that starts N processes without GPUs
    assert int(cmd[cmd.index("--main_process_port") + 1]) > 0  # picked free, not accelerate's fixed 29500
    assert cmd[-4:] == ["-m", "eapo.cli.main", "train", "--quick"]
    with pytest.raises(FileNotFoundError):
        accelerate_command(2, ["train"], config_file=Path("nope.yaml"))
    with pytest.raises(ValueError):
        accelerate_command(0, ["train"])


def test_children_parse_the_parents_arguments_back():
    args = train_args(config=Path("c.yaml"), sets=["rl.steps=3", "eval.k=[1,2]"], out=Path("runs/x"), arms="eapo",
                      resume=None, quick=True, model="m/p", cache_dir=Path("/c"), verbose=True)
    train = typer.main.get_command(app).commands["train"]
    params = train.make_context("train", args[1:]).params
    assert params["config"] == Path("c.yaml") and list(params["set_"]) == ["rl.steps=3", "eval.k=[1,2]"]
    assert (params["out"], params["arms"], params["quick"], params["model"]) == (Path("runs/x"), "eapo", True, "m/p")
    assert params["cache_dir"] == Path("/c") and params["verbose"] and params["num_processes"] == 1
