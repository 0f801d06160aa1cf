"""What every EAPO agent loop and consult tool of one verl worker process shares.

verl instantiates an agent loop (and a tool) per sample, so what is expensive (the config,
the expert pool with its HTTP clients, the threads the synchronous engine runs in) is built
once per process and kept here, keyed by the config path and overrides. Its own module so
that the agent loop (`agent_loop.py`) and the tool (`tool.py`) both read it one way, and
the agent loop may still offer the tool without either importing the other's internals.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Any

from eapo.integrations.verl.core import VerlEAPOConfig, build_pool, load_verl_config


@functools.cache
def shared_state(path: str, overrides: tuple[str, ...]) -> tuple[VerlEAPOConfig, Any, concurrent.futures.ThreadPoolExecutor]:
    """The config, the expert pool and the episode threads of this worker process (built
    on the first call with these arguments, the same objects on every later one)."""
    cfg = load_verl_config(path, overrides)
    pool = build_pool(cfg)
    return cfg, pool, concurrent.futures.ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="eapo-episode")
