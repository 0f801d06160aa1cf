"""Tasks: problems with verifiable answers. The built-in one is `ChainTask`."""

from eapo.tasks.arithmetic import ChainTask, evaluate_chain
from eapo.tasks.base import OracleTask, Task

__all__ = ["ChainTask", "OracleTask", "Task", "evaluate_chain"]
