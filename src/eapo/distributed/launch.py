"""`eapo train --num-processes N`: start the same command under `accelerate launch`.

The parent process only builds the command and waits; every child is an ordinary
`eapo train` process that finds `RANK`/`WORLD_SIZE` in its environment. The same children
come from a direct `accelerate launch -m eapo.cli.main train ...` (with `--multi_gpu` or a
config file, see below), so the two ways are one code path.

Which launcher: without `--accelerate-config`, `--multi_gpu` is passed. Despite its name
it is accelerate's torchrun-based launcher, and the only one that starts several
processes on a machine without GPUs (`accelerate launch --num_processes 2` alone starts
ONE process there, silently); the children then form a gloo group because the trainer
runs with `use_cpu` where there is no GPU. With GPUs it is plain DDP. With a config file
(examples/accelerate/), the file chooses DDP, DeepSpeed or FSDP and `--num_processes`
overrides its process count. A free port is picked for the rendezvous so that two runs
on one machine do not collide on accelerate's default 29500.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accelerate_command(num_processes: int, eapo_args: Sequence[str], *, config_file: Path | None = None,
                       port: int | None = None) -> list[str]:
    """The `accelerate launch` command that runs `eapo <eapo_args>` in `num_processes`
    processes.

    >>> cmd = accelerate_command(2, ["train", "--quick"], port=1234)
    >>> cmd[1:]
    ['-m', 'accelerate.commands.launch', '--num_processes', '2', '--num_machines', '1', '--multi_gpu', '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', '1234', '-m', 'eapo.cli.main', 'train', '--quick']
    """
    if num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes),
           "--num_machines", "1"]
    if config_file is not None:
        if not Path(config_file).exists():
            raise FileNotFoundError(f"accelerate config {config_file} does not exist")
        cmd += ["--config_file", str(config_file)]
    else:
        cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--main_process_port", str(port if port is not None else free_port())]
    return cmd + ["-m", "eapo.cli.main", *eapo_args]


def train_args(*, config: Path | None, sets: Sequence[str], out: Path | None, arms: str, resume: Path | None,
               quick: bool, model: str | None, cache_dir: Path | None, verbose: bool) -> list[str]:
    """The `eapo train` arguments the children get: the parent's, without the launch options."""
    args = ["train"]
    if config is not None:
        args.append(str(config))
    for item in sets:
        args += ["--set", item]
    if out is not None:
        args += ["--out", str(out)]
    args += ["--arms", arms]
    if resume is not None:
        args += ["--resume", str(resume)]
    if quick:
        args.append("--quick")
    if model is not None:
        args += ["--model", model]
    if cache_dir is not None:
        args += ["--cache-dir", str(cache_dir)]
    if verbose:
        args.append("--verbose")
    return args


def relaunch(num_processes: int, eapo_args: Sequence[str], *, config_file: Path | None = None) -> int:
    """Run the children and return their exit code (non-zero if any child failed)."""
    cmd = accelerate_command(num_processes, eapo_args, config_file=config_file)
    log.info("launching %d processes: %s", num_processes, " ".join(cmd))
    return subprocess.call(cmd)
