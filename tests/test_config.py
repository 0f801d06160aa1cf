"""Configuration: YAML -> typed config -> YAML round trips, `--set` overrides, and errors
that name the dotted path and what would have been valid. Fast: trl is imported only by
the tests of the `rl.trl` passthrough."""

from __future__ import annotations

import dataclasses
import doctest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from eapo.schedules.acceptance import AcceptanceConfig
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import eapo.config
from eapo.config import ConfigError, apply_overrides, dump_yaml, from_dict, load_config, load_yaml, to_dict
from eapo.schedules.adaptive import AdaptiveConfig
from eapo.training.config import TRL_OWNED_KEYS, EvalConfig, ExpertsConfig, RLConfig, TrainConfig

DEFAULT_YAML = Path(__file__).resolve().parents[1] / "examples" / "default.yaml"


def build(*overrides: str, data: dict | None = None) -> TrainConfig:
    return from_dict(TrainConfig, apply_overrides(data or {}, list(overrides), TrainConfig))


def test_docstring_examples():
    assert doctest.testmod(eapo.config).failed == 0


# --- the embedded default ------------------------------------------------------------------


def test_default_yaml_is_the_default_config():
    assert load_yaml(TrainConfig, DEFAULT_YAML) == TrainConfig()


def test_default_yaml_writes_out_every_key():
    # Equality of the loaded object alone would not notice a key missing from the file.
    assert yaml.safe_load(DEFAULT_YAML.read_text()) == to_dict(TrainConfig())


# --- round trips ---------------------------------------------------------------------------


def test_nested_round_trip_yaml_object_yaml(tmp_path):
    cfg = build(
        "rl.steps=10",
        "acceptance.adaptive={window: 4, threshold: 0.5}",
        "rollout.tags.answer_open=<ans>",
        "model.lora_target_modules=[q_proj]",
        "eval.k=[1, 2]",
        "rl.trl={}",
    )
    text = dump_yaml(cfg)
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    again = load_yaml(TrainConfig, path)
    assert again == cfg
    assert dump_yaml(again) == text
    assert again.acceptance.adaptive == AdaptiveConfig(window=4, threshold=0.5)
    assert again.model.lora_target_modules == ("q_proj",)  # a YAML list becomes a tuple


def test_to_dict_gives_only_plain_yaml_types():
    def walk(x):
        if isinstance(x, dict):
            assert all(isinstance(k, str) for k in x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        else:
            assert x is None or type(x) in (bool, int, float, str), (x, type(x))

    walk(to_dict(build("acceptance.adaptive={window: 2}", "eval.k=[1]")))
    # and safe_dump (which refuses tuples and objects) accepts it
    yaml.safe_dump(to_dict(TrainConfig()))


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 10_000),
    lr=st.floats(1e-8, 1.0, allow_nan=False),
    k=st.lists(st.integers(1, 8), min_size=1, max_size=4),
    tag=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8),
)
def test_round_trip_property(steps, lr, k, tag):
    try:
        cfg = TrainConfig(
            rl=RLConfig(steps=steps, learning_rate=lr),
            eval=EvalConfig(n=8, k=tuple(k)),
            rollout=dataclasses.replace(TrainConfig().rollout, tags=dataclasses.replace(TrainConfig().rollout.tags, answer_open=tag)),
        )
    except ValueError:
        return  # e.g. the tag collides with another tag
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    assert from_dict(TrainConfig, yaml.safe_load(dump_yaml(cfg))) == cfg


# --- overrides -----------------------------------------------------------------------------


def test_overrides_set_nested_values_absent_from_the_yaml():
    cfg = build("rl.steps=10", "acceptance.kind=linear", "rollout.tags.answer_open=[A]")
    assert cfg.rl.steps == 10
    assert cfg.acceptance.kind == "linear"
    assert cfg.rollout.tags.answer_open == "[A]"  # text field: taken as written
    assert cfg.rollout.tags.answer_close == "</answer>"  # siblings keep their defaults


def test_a_section_given_in_part_keeps_the_enclosing_configs_defaults():
    """TrainConfig's rollout has the empty system prompt (the tiny policy's); setting
    another rollout key must not bring back RolloutConfig's own default (the protocol
    text). It did, silently, until issue 4's runs showed a collapsed policy."""
    assert TrainConfig().rollout.system_prompt == ""
    assert build("rollout.temperature=0.7").rollout.system_prompt == ""
    assert build(data={"rollout": {"max_queries": 1}}).rollout.system_prompt == ""
    assert build("rollout.system_prompt=null").rollout.system_prompt is None  # still settable


def test_override_creates_an_optional_section_from_a_mapping():
    cfg = build("acceptance.adaptive={window: 4}")
    assert cfg.acceptance.adaptive == AdaptiveConfig(window=4)
    # a key below a null optional section creates it too
    cfg = build("acceptance.adaptive.window=4", data={"acceptance": {"adaptive": None}})
    assert cfg.acceptance.adaptive == AdaptiveConfig(window=4)
    # and null switches it off again
    assert build("acceptance.adaptive={window: 4}", "acceptance.adaptive=null").acceptance.adaptive is None


def test_overrides_parse_yaml_values():
    cfg = build("model.lora=true", "eval.k=[1,2]", "experts.model=null", "rl.trl={}", "model.policy=some/model")
    assert cfg.model.lora is True
    assert cfg.eval.k == (1, 2)
    assert cfg.experts.model is None
    assert cfg.model.policy == "some/model"


def test_overrides_do_not_change_their_input():
    data = {"rl": {"steps": 3}}
    out = apply_overrides(data, ["rl.steps=4"], TrainConfig)
    assert data == {"rl": {"steps": 3}} and out == {"rl": {"steps": 4}}


def test_later_override_wins_and_mapping_replaces_subtree():
    assert build("rl.steps=3", "rl.steps=5").rl.steps == 5
    data = apply_overrides({"rl": {"steps": 3, "beta": 0.1}}, ["rl={steps: 7}"], TrainConfig)
    assert data == {"rl": {"steps": 7}}


def test_override_of_a_bad_value_names_the_key_and_allowed_values():
    with pytest.raises(ConfigError) as e:
        build("experts.kind=nope")
    msg = str(e.value)
    assert "experts.kind" in msg and "nope" in msg
    for kind in ("oracle", "model", "homogeneous", "noisy"):
        assert kind in msg


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("rl.stpes=10", ["'rl.stpes'", "Did you mean 'rl.steps'", "prompts_per_step"]),
        ("accptance.kind=linear", ["'accptance'", "Did you mean 'acceptance'", "top level"]),
        ("rollout.tags.answer_opn=x", ["'rollout.tags.answer_opn'", "'rollout.tags.answer_open'"]),
        ("acceptance.adaptive.windw=3", ["'acceptance.adaptive.windw'", "'acceptance.adaptive.window'"]),
    ],
)
def test_unknown_override_key_names_the_path_and_suggests(override, fragment):
    with pytest.raises(ConfigError) as e:
        build(override)
    for f in fragment:
        assert f in str(e.value)


@pytest.mark.parametrize("override", ["rl.steps.x=1", "noequals", "=3", "rl..steps=1", "rl.steps=[1,"])
def test_malformed_overrides(override):
    with pytest.raises(ConfigError):
        build(override)


def test_override_below_a_dict_field_is_free_form():
    # rl.trl is a dict: any key path is structurally fine (the trl check comes later)
    out = apply_overrides({}, ["rl.trl.gradient_accumulation_steps=2"], TrainConfig)
    assert out == {"rl": {"trl": {"gradient_accumulation_steps": 2}}}


def test_overrides_without_a_schema_only_touch_existing_keys():
    assert apply_overrides({"a": {"b": 1}}, ["a.b=2"]) == {"a": {"b": 2}}
    with pytest.raises(ConfigError, match="'a.c'"):
        apply_overrides({"a": {"b": 1}}, ["a.c=2"])


def test_load_config_combines_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("rl:\n  steps: 7\n  learning_rate: 1e-5\nexperts:\n  kind: noisy\n")
    cfg = load_config(TrainConfig, path, ["experts.noise_p=0.2", "rl.steps=9"])
    assert cfg.rl.steps == 9
    assert cfg.rl.learning_rate == 1e-5  # YAML 1.1 reads 1e-5 as a string; converted
    assert (cfg.experts.kind, cfg.experts.noise_p) == ("noisy", 0.2)
    assert cfg.rl.num_generations == RLConfig().num_generations
    assert load_config(TrainConfig, None, []) == TrainConfig()


def test_load_config_errors_name_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("rl:\n  stepz: 7\n")
    with pytest.raises(ConfigError, match=r"run\.yaml.*'rl\.stepz'"):
        load_config(TrainConfig, path, [])
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(TrainConfig, path, [])


# --- unknown keys and bad types in data ----------------------------------------------------


def test_unknown_keys_in_data_name_the_dotted_path():
    with pytest.raises(ConfigError, match=r"unknown key 'rl\.stepss'.*Did you mean 'rl\.steps'"):
        from_dict(TrainConfig, {"rl": {"stepss": 3}})
    with pytest.raises(ConfigError, match=r"unknown key 'sed'.*Did you mean 'seed'.*top level"):
        from_dict(TrainConfig, {"sed": 3})


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("rl.steps=abc", "rl.steps: expected int, got 'abc'"),
        ("rl.steps=true", "rl.steps: expected int, got True (bool)"),
        ("rl.steps=2.0", "rl.steps: expected int, got 2.0"),
        ("rl.learning_rate=fast", "rl.learning_rate: expected float, got 'fast'"),
        ("rl.learning_rate=true", "rl.learning_rate: expected float, got True"),
        ("model.lora=1", "model.lora: expected bool"),
        ("eval.k=3", "eval.k: expected tuple[int, ...]"),
        ("eval.k=[1, x]", "eval.k[1]: expected int"),
        ("rl=5", "rl: expected a mapping"),
        ("acceptance.adaptive=3", "acceptance.adaptive: expected a mapping"),
    ],
)
def test_bad_types_name_path_expected_type_and_value(override, fragment):
    with pytest.raises(ConfigError) as e:
        build(override)
    assert fragment in str(e.value)


@pytest.mark.parametrize("text, value", [("1e-5", 1e-5), ("3E+2", 300.0), ("+2.5e-3", 2.5e-3), (".5", 0.5)])
def test_numeric_strings_are_accepted_for_floats(text, value):
    got = from_dict(TrainConfig, {"rl": {"learning_rate": text}}).rl.learning_rate
    assert got == value and type(got) is float
    assert build(f"rl.learning_rate={text}").rl.learning_rate == value  # same through --set


def test_negative_numeric_string_reaches_validation():
    with pytest.raises(ConfigError, match="experts.temperature"):
        from_dict(TrainConfig, {"experts": {"temperature": "-2.5e-3"}})


def test_int_for_float_is_converted():
    cfg = from_dict(TrainConfig, {"rl": {"learning_rate": 1}})
    assert type(cfg.rl.learning_rate) is float


def test_post_init_errors_are_config_errors_with_the_section_path():
    # a message that already starts with the section path is not prefixed twice
    with pytest.raises(ConfigError, match=r"^rollout\.max_queries must be >= 1") as e:
        build("rollout.max_queries=0")
    assert isinstance(e.value, ValueError)
    with pytest.raises(ConfigError, match=r"^acceptance\.adaptive: AdaptiveConfig\.window"):
        build("acceptance.adaptive={window: 0}")
    with pytest.raises(ConfigError, match=r"^eval\.k values must be <= eval\.n"):
        build("eval.k=[1, 8]")


# --- generic converter on small dataclasses ------------------------------------------------


@dataclass(frozen=True)
class _Inner:
    x: int = 1


@dataclass(frozen=True)
class _Outer:
    mode: Literal["a", "b"] = "a"
    pair: tuple[int, str] = (1, "x")
    names: list[str] = field(default_factory=list)
    table: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    inner: _Inner | None = None
    either: int | str = 0
    required: int = 0


def test_generic_types():
    cfg = from_dict(
        _Outer,
        {"mode": "b", "pair": [2, "y"], "names": ["p"], "table": {"k": 3}, "extra": {"a": [1, (2,)]},
         "inner": {"x": 5}, "either": "s"},
    )
    assert cfg == _Outer("b", (2, "y"), ["p"], {"k": 3}, {"a": [1, [2]]}, _Inner(5), "s")
    assert from_dict(_Outer, to_dict(cfg)) == cfg
    for bad, frag in [
        ({"mode": "c"}, "mode: expected one of 'a', 'b'"),
        ({"pair": [1]}, "pair: expected 2 items"),
        ({"table": {"k": "v"}}, "table.k: expected int"),
        ({"extra": {"a": object()}}, "extra.a: expected plain YAML data"),
        ({"either": 1.5}, "either: expected int | str"),
        ({"inner": {"y": 1}}, "unknown key 'inner.y'"),
    ]:
        with pytest.raises(ConfigError, match=frag.replace("|", r"\|").replace("(", r"\(").replace(".", r"\.")):
            from_dict(_Outer, bad)


def test_missing_required_key():
    @dataclass(frozen=True)
    class Needs:
        a: int

    with pytest.raises(ConfigError, match="a: required key is missing"):
        from_dict(Needs, {})


# --- sections of the training config -------------------------------------------------------


def test_defaults_follow_eapo_md():
    cfg = TrainConfig()
    assert (cfg.rl.loss_type, cfg.rl.epsilon, cfg.rl.epsilon_high, cfg.rl.beta, cfg.rl.scale_rewards) == (
        "dapo", 0.2, 0.28, 0.0, "group")
    assert cfg.rollout.max_queries == 3 and cfg.turn_budget.train == 10
    assert AcceptanceConfig().kind == "inverse"  # the paper's schedule stays the section default
    assert cfg.acceptance.kind == "linear"  # the built-in run's choice (PILOT.md: 1/s = plain RL there)
    assert cfg.penalty.coef == 0.0 and cfg.reward.format_reward == 0.1
    assert cfg.experts.routing == "mod"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["experts.noise_p=1.5"], "experts.noise_p"),
        (["experts.routing=nearest"], "experts.routing must be one of mod, random, round_robin"),
        (["experts.model=x"], "experts.model (a folder or hub id) is required by experts.kind 'model'"),
        (["experts.kind=model"], "experts.model (a folder or hub id) is required by experts.kind 'model'"),
        (["rl.scale_rewards=std"], "rl.scale_rewards must be one of group, batch, none"),
        (["rl.arm=sft"], "rl.arm must be one of eapo, self_rl"),
        (["rl.num_generations=1"], "rl.num_generations must be an int >= 2"),
        (["eval.lock=maybe"], "eval.lock must be one of forbid, refuse, both"),
        (["eval.k=[]"], "eval.k must list"),
        (["task.min_len=7"], "task.min_len (7) must be <= task.max_len (6)"),
        (["warmstart.consult_prob=2"], "warmstart.consult_prob"),
        (["eval.val_size=500"], "eval.val_size (500) must be <= task.val_size (200)"),
    ],
)
def test_section_validation(overrides, fragment):
    with pytest.raises(ConfigError) as e:
        build(*overrides)
    assert fragment in str(e.value)


def test_expert_model_and_noise():
    cfg = build("experts.kind=model", "experts.model=some/expert", "experts.noise_p=0.1")
    assert (cfg.experts.model, cfg.experts.noise_p) == ("some/expert", 0.1)


def test_temperature_has_one_home():
    cfg = build("rollout.temperature=0.7")
    assert cfg.rollout.temperature == 0.7
    with pytest.raises(ConfigError, match="rl.temperature"):
        build("rl.temperature=0.7")


def test_penalty_on_all_completions_needs_unscaled_advantages():
    penalty_all = ["penalty.coef=0.05", "penalty.apply_to=all"]
    for scale in ("group", "batch"):
        with pytest.raises(ConfigError, match=r"scale_rewards 'none'.*EAPO\.md §8"):
            build(*penalty_all, f"rl.scale_rewards={scale}")
    assert build(*penalty_all, "rl.scale_rewards=none").penalty.apply_to == "all"
    assert build("penalty.coef=0.05").penalty.apply_to == "success"  # the safe default
    assert build("penalty.apply_to=all").penalty.coef == 0  # off: harmless


# --- rl.trl passthrough (imports trl: a few seconds, once) ---------------------------------


def test_trl_passthrough_accepts_grpo_config_fields():
    cfg = build("rl.trl={gradient_accumulation_steps: 2, mask_truncated_completions: true}")
    assert cfg.rl.trl == {"gradient_accumulation_steps": 2, "mask_truncated_completions": True}
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg


def test_trl_passthrough_rejects_typos_with_suggestions():
    with pytest.raises(ConfigError, match=r"rl\.trl\.gradient_acumulation_steps.*'gradient_accumulation_steps'"):
        build("rl.trl.gradient_acumulation_steps=2")


@pytest.mark.parametrize("key", ["learning_rate", "max_steps", "output_dir"])
def test_trl_passthrough_refuses_keys_this_config_owns(key):
    with pytest.raises(ConfigError, match=f"set {TRL_OWNED_KEYS[key]} instead"):
        build(f"rl.trl.{key}=1")


def test_owned_keys_are_grpo_config_fields():
    trl = pytest.importorskip("trl")
    names = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    assert set(TRL_OWNED_KEYS) <= names


def test_experts_routings_come_from_the_pool_registry():
    from eapo.experts.pool import ROUTINGS

    for name in ROUTINGS.names():
        assert ExpertsConfig(routing=name).routing == name
