"""Tasks: problems with verifiable answers. The built-in one is `ChainTask`; `DatasetTask`
draws reproducible splits from any set the benchmarks layer loads."""

from eapo.tasks.arithmetic import ChainTask, evaluate_chain
from eapo.tasks.base import OracleTask, Task
from eapo.tasks.dataset import DatasetTask

__all__ = ["ChainTask", "DatasetTask", "OracleTask", "Task", "evaluate_chain"]
