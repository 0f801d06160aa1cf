"""Old import paths of what issue 18 moved to `eapo.assembly` still work for one release:
each old name is the very object at its new home (`eapo.moved.forward`), and a name that
never existed still raises AttributeError."""

from __future__ import annotations

import importlib

import pytest

OLD_TO_NEW = [
    ("eapo.training.run", "build_task", "eapo.assembly.run"),
    ("eapo.training.run", "with_task_settings", "eapo.assembly.run"),
    ("eapo.training.run", "given_policy", "eapo.assembly.run"),
    ("eapo.training.run", "with_policy_prompt", "eapo.assembly.run"),
    ("eapo.training.run", "build_pool", "eapo.assembly.pool"),
    ("eapo.training.expert_pool", "build_member_pool", "eapo.assembly.pool"),
    ("eapo.training.expert_pool", "weighted_order", "eapo.assembly.pool"),
    ("eapo.training.expert_pool", "PoolMetrics", "eapo.training.callbacks"),
    ("eapo.training.compare", "run_arms", "eapo.assembly.arms"),
    ("eapo.training.compare", "table_rows", "eapo.assembly.arms"),
    ("eapo.distributed.arms", "run_arms_distributed", "eapo.assembly.arms_distributed"),
    ("eapo.evaluation.workflow", "build_workflow_pool", "eapo.assembly.pool"),
    ("eapo.assets", "shipped_warm_start", "eapo.training.warmstart"),
]


@pytest.mark.parametrize("old, name, new", OLD_TO_NEW)
def test_an_old_path_gives_the_moved_object(old, name, new):
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


def test_from_import_of_an_old_name_works_and_unknown_names_still_fail():
    from eapo.training.run import build_task  # noqa: F401  (PEP 562: from-import reads __getattr__)

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        importlib.import_module("eapo.training.run").nothing_here
