"""Test-wide settings. Hypothesis runs without deadlines and slow-data health checks: CI
machines have 2 shared cores, and a property test must fail on a wrong answer, not on a
busy machine."""

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "eapo", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
)
settings.load_profile("eapo")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models are overhead-bound: on 2 shared cores one torch thread per process runs
    them several times faster than two spinning against other processes. `make test` sets
    OMP_NUM_THREADS=1 too; this covers a bare `pytest`, unless the caller chose a count."""
    import os

    import torch

    before = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- shared data

_SKIP = "benchmark data folder not found (../shared/data or $EAPO_DATA_DIR)"


@pytest.fixture(scope="session")
def have_data():
    """The benchmark data folder; tests that read the real files skip without it (a clone
    with no ../shared beside it), naming both places it is looked for."""
    from eapo.evaluation.benchmarks import data_dir

    try:
        return data_dir()
    except FileNotFoundError:
        pytest.skip(_SKIP)


@pytest.fixture(scope="session")
def benchmark_rows(have_data):
    """`benchmark_rows(file)`: the JSON Lines rows of a file in the data folder (read once
    per session); skips when the file is missing."""
    import functools
    import json

    @functools.cache
    def rows(file: str) -> tuple[dict, ...]:
        path = have_data / file
        if not path.is_file():
            pytest.skip(f"{path} not found")
        with path.open(encoding="utf-8") as fh:
            return tuple(map(json.loads, fh))

    return rows
