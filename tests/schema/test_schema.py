"""The schema package: every field of every section a run reads has a doc, the checked-in
`examples/default.yaml` is the generated text and loads as `TrainConfig()`, the old import
paths give the same objects, the choices agree with the registries that implement them,
and `eapo.schema` imports nothing above it. Fast: no torch, no trl."""

from __future__ import annotations

import dataclasses
import doctest
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import eapo.schema
import eapo.typed_yaml.convert
import eapo.typed_yaml.files
import eapo.typed_yaml.overrides
from eapo.schema import TrainConfig
from eapo.schema.docs import field_docs, sections
from eapo.schema.example import COMMAND, default_yaml
from eapo.typed_yaml import load_yaml, to_dict

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_YAML = ROOT / "examples" / "default.yaml"


# --- docs ----------------------------------------------------------------------------------


def test_sections_reachable_from_train_config():
    names = {c.__name__ for c in sections(TrainConfig)}
    assert names == {
        "TrainConfig", "TaskConfig", "ModelConfig", "ExpertsConfig", "ExpertMemberConfig", "RolloutConfig",
        "Tags", "AcceptanceConfig", "AdaptiveConfig", "TurnBudgetConfig", "PenaltyConfig", "RewardConfig",
        "WarmStartConfig", "RLConfig", "EvalConfig", "LoggingConfig",
    }


@pytest.mark.parametrize("cls", sections(TrainConfig), ids=lambda c: c.__name__)
def test_every_field_has_a_doc(cls):
    docs = field_docs(cls)
    missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name, "").strip()]
    assert not missing, (
        f"{cls.__module__}.{cls.__name__}: fields without a doc (a string literal on the line "
        f"after the field): {missing}"
    )


@pytest.mark.parametrize("cls", [c for c in sections(TrainConfig) if c.__name__ != "Tags"], ids=lambda c: c.__name__)
def test_every_section_is_defined_in_the_schema(cls):
    assert cls.__module__.startswith("eapo.schema."), f"{cls.__name__} is defined in {cls.__module__}"
    assert getattr(eapo.schema, cls.__name__) is cls


def test_field_docs_reads_the_string_after_each_field():
    from eapo.schema import RLConfig

    assert field_docs(RLConfig)["epsilon"] == "Lower clip of the probability ratio (eps_low)."


# --- examples/default.yaml -----------------------------------------------------------------


def test_default_yaml_is_generated_from_the_schema():
    assert DEFAULT_YAML.read_text(encoding="utf-8") == default_yaml(), (
        f"examples/default.yaml is out of date with src/eapo/schema/; regenerate it: {COMMAND}"
    )


def test_default_yaml_loads_as_the_default_config():
    assert load_yaml(TrainConfig, DEFAULT_YAML) == TrainConfig()
    assert yaml.safe_load(default_yaml()) == to_dict(TrainConfig())


def test_generator_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "eapo.schema.example"], capture_output=True, text=True, check=True)
    assert out.stdout == default_yaml()


def test_commented_sections_load_when_uncommented():
    # The commented-out keys of acceptance.adaptive and experts.members are valid YAML
    # with the class defaults, so a user can uncomment them.
    from eapo.schema import AdaptiveConfig
    from eapo.typed_yaml import from_dict

    lines = default_yaml().splitlines()
    for name in ("adaptive", "members"):
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"# {name}:  ("))
        indent = len(lines[start]) - len(lines[start].lstrip())
        block = [f"{name}:"]
        for line in lines[start + 1:]:
            if not line.startswith(" " * indent + "#   "):
                break
            block.append(line[indent + 2:])
        data = yaml.safe_load("\n".join(block))[name]
        if name == "adaptive":
            assert from_dict(AdaptiveConfig, data) == AdaptiveConfig()
        else:
            assert len(data) == 1 and data[0]["type"] == "openai" and len(data[0]) == 26


def test_every_line_fits():
    assert max(len(line) for line in default_yaml().splitlines()) <= 100


def test_eapo_train_loads_default_yaml_as_the_default(monkeypatch):
    # `eapo train examples/default.yaml` builds TrainConfig() (stopped right after loading).
    from typer.testing import CliRunner

    import eapo.typed_yaml
    from eapo.cli.main import app

    loaded = []

    class Loaded(Exception):
        pass

    def load_config(cls, path, overrides=()):
        loaded.append(eapo.typed_yaml.files.load_config(cls, path, overrides))
        raise Loaded

    monkeypatch.setattr(eapo.typed_yaml, "load_config", load_config)
    result = CliRunner().invoke(app, ["train", str(DEFAULT_YAML)])
    assert isinstance(result.exception, Loaded), result.output
    assert loaded == [TrainConfig()]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("[pe]*/*.yaml")), ids=lambda p: p.name)
def test_example_training_configs_load(path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    assert isinstance(load_yaml(TrainConfig, path), TrainConfig)


# --- old import paths ----------------------------------------------------------------------


def test_old_paths_give_the_same_objects():
    import eapo.config
    import eapo.rewards.reward
    import eapo.rollout.config
    import eapo.schedules.acceptance
    import eapo.schedules.adaptive
    import eapo.schedules.budget
    import eapo.schedules.gate
    import eapo.schedules.penalty
    import eapo.tasks.arithmetic
    import eapo.training.checks
    import eapo.training.config
    import eapo.training.experts_config
    import eapo.typed_yaml

    for name in eapo.training.config.__all__:
        assert getattr(eapo.training.config, name) is getattr(eapo.schema, name), name
    for name in eapo.training.experts_config.__all__:
        assert getattr(eapo.training.experts_config, name) is getattr(eapo.schema, name), name
    for name in set(eapo.rollout.config.__all__) - {"ROLLOUT_EXPERTS"}:  # the CLI's choices, not a config key
        assert getattr(eapo.rollout.config, name) is getattr(eapo.schema, name), name
    for name in eapo.training.checks.__all__:
        assert getattr(eapo.training.checks, name) is getattr(eapo.schema, name), name
    for name in eapo.config.__all__:
        assert getattr(eapo.config, name) is getattr(eapo.typed_yaml, name), name
    pairs = [
        (eapo.rewards.reward.RewardConfig, eapo.schema.RewardConfig),
        (eapo.schedules.acceptance.AcceptanceConfig, eapo.schema.AcceptanceConfig),
        (eapo.schedules.adaptive.AdaptiveConfig, eapo.schema.AdaptiveConfig),
        (eapo.schedules.budget.TurnBudgetConfig, eapo.schema.TurnBudgetConfig),
        (eapo.schedules.penalty.PenaltyConfig, eapo.schema.PenaltyConfig),
        (eapo.schedules.penalty.PENALTY_KINDS, eapo.schema.PENALTY_KINDS),
        (eapo.schedules.penalty.APPLY_TO, eapo.schema.APPLY_TO),
        (eapo.schedules.gate.GRANULARITIES, eapo.schema.GRANULARITIES),
        (eapo.tasks.arithmetic.ORACLES, eapo.schema.ORACLES),
        (eapo.schedules.AcceptanceConfig, eapo.schema.AcceptanceConfig),
        (eapo.rewards.RewardConfig, eapo.schema.RewardConfig),
    ]
    for old, new in pairs:
        assert old is new


# --- choices agree with the registries that implement them ----------------------------------


def test_choices_agree_with_the_registries():
    from eapo.experts.routing import ROUTINGS
    from eapo.rewards import SCORERS
    from eapo.schedules.acceptance import ACCEPTANCE_SHAPES
    from eapo.schedules.adaptive import COMBINERS
    from eapo.schedules.budget import BUDGET_SHAPES

    assert tuple(ACCEPTANCE_SHAPES) == eapo.schema.ACCEPTANCE_KINDS
    assert tuple(BUDGET_SHAPES) == eapo.schema.BUDGET_KINDS
    assert tuple(COMBINERS) == eapo.schema.COMBINE_RULES
    assert tuple(ROUTINGS) == eapo.schema.ROUTING_NAMES
    assert tuple(SCORERS) == eapo.schema.SCORER_NAMES
    assert set(eapo.schema.PENALTY_KINDS) <= set(ACCEPTANCE_SHAPES)


# --- layering ------------------------------------------------------------------------------


def test_schema_imports_nothing_above_it():
    code = (
        "import sys, eapo.schema, eapo.schema.docs, eapo.schema.example; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('eapo'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    allowed = ("eapo", "eapo.schema", "eapo.protocol", "eapo.types", "eapo.registry", "eapo.typed_yaml", "eapo.config")
    above = [m for m in out if not any(m == a or m.startswith(a + ".") for a in allowed)]
    assert not above, f"eapo.schema imports {above}"


@pytest.mark.parametrize("module", [eapo.typed_yaml.convert, eapo.typed_yaml.overrides, eapo.typed_yaml.files])
def test_typed_yaml_docstring_examples(module):
    assert doctest.testmod(module).failed == 0
