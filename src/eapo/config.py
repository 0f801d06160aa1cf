"""Typed configuration from plain data: frozen dataclasses in, YAML in and out.

Why this exists: a run is described once, by dataclasses with defaults (one definition,
no second schema in YAML), and every way of filling them (a YAML file, `--set key=value`
overrides, a saved run's config) goes through one strict converter. A typo in a YAML key
or an override must fail at load time, naming the dotted path and the keys that would
have been valid, not silently fall back to a default deep inside a training run.

Conversion rules (`from_dict`): nested dataclasses from mappings; `X | None`; `list[...]`
and `tuple[...]` from YAML lists (a tuple field gets a tuple, so the frozen config stays
comparable); `dict[str, ...]`; `Literal[...]`; `Any` (plain YAML data only); and strict
scalars: a bool is not an int, an int is accepted (and converted) for a float, and a
numeric string for a float is converted, because YAML 1.1 (PyYAML) reads `1e-5` as a
string. Keys absent from the data take the dataclass default. Validation of values is
each dataclass's own `__post_init__`; its ValueError/TypeError comes back as a
`ConfigError` prefixed with the section's dotted path.

Overrides (`apply_overrides`) are checked against the dataclass, not only the data, so a
key left at its default (absent from the YAML) can still be set; setting a key inside an
optional section that is absent or null creates that section. A mapping value replaces
the whole subtree (no deep merge), which keeps `a.b={...}` predictable. A text field takes
the override as written unless it is null (`tags.answer_open=[A]` is the text "[A]", not
a list): what a shell user types for a string should not depend on YAML's reading of it.

Not here: anything about a particular run (that is `eapo.training.config`), and no torch.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

__all__ = [
    "ConfigError",
    "apply_overrides",
    "dump_yaml",
    "from_dict",
    "load_config",
    "load_yaml",
    "read_yaml",
    "to_dict",
]

T = TypeVar("T")

# What YAML 1.1 leaves as a string but a person means as a number: 1e-5, 3E+2, -2.5e3.
_NUMERIC = re.compile(r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A configuration that cannot be built; the message names the dotted path."""


# ------------------------------------------------------------------------------ helpers


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Modules use `from __future__ import annotations`, so field types are strings until
    # resolved here, in the namespace of the module that defined the class.
    return typing.get_type_hints(cls)


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if tp is Any:
        return "any plain YAML value"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is not None:
        args = typing.get_args(tp)
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if dataclasses.is_dataclass(tp):
        return f"a mapping (section {tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _bad(path: str, tp: Any, value: Any, hint: str = "") -> ConfigError:
    where = path or "(top level)"
    return ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__}){hint}")


def _unknown_key(path: str, key: str, allowed: Sequence[str]) -> ConfigError:
    dotted = _join(path, key)
    close = difflib.get_close_matches(key, list(allowed), n=3, cutoff=0.6)
    suggestion = f" Did you mean {' or '.join(repr(_join(path, c)) for c in close)}?" if close else ""
    level = f"under '{path}'" if path else "at the top level"
    return ConfigError(f"unknown key '{dotted}'.{suggestion} Allowed keys {level}: {', '.join(allowed)}")


def _section_type(tp: Any) -> Any:
    """The dataclass or mapping type a key path may descend into, or None for a leaf.
    `X | None` is looked through, since a key below an optional section creates it."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = [_section_type(a) for a in typing.get_args(tp) if a is not type(None)]
        arms = [a for a in arms if a is not None]
        return arms[0] if len(arms) == 1 else None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if tp is Any or tp is dict or origin in (dict, Mapping):
        return dict
    return None


# --------------------------------------------------------------------------- from_dict


def from_dict(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build the (possibly nested) dataclass `cls` from plain data.

    Keys absent from `data` take the dataclass defaults. `path` is the dotted location
    of `data` in a larger config and only prefixes error messages.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opt:
    ...     lr: float = 1e-3
    ...     sizes: tuple[int, ...] = (1,)
    >>> from_dict(Opt, {"lr": "1e-5", "sizes": [2, 4]})
    Opt(lr=1e-05, sizes=(2, 4))
    >>> from_dict(Opt, {"lr": True})
    Traceback (most recent call last):
    ...
    eapo.config.ConfigError: lr: expected float, got True (bool)
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    if not isinstance(data, Mapping):
        raise _bad(path, cls, data)
    fields = _fields(cls)
    names = [f.name for f in fields]
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{path or '(top level)'}: keys must be strings, got {key!r}")
        if key not in names:
            raise _unknown_key(path, key, names)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.name in data:
            value = data[f.name]
            if isinstance(value, Mapping):
                value = {**_factory_overrides(f), **value}
            kwargs[f.name] = _convert(value, hints[f.name], _join(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, f.name)}: required key is missing")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        msg = str(e)
        if not path or msg.startswith(f"{path}.") or msg.startswith(f"{path}:"):
            raise ConfigError(msg) from e
        raise ConfigError(f"{path}: {msg}") from e


def _factory_overrides(f: dataclasses.Field) -> dict[str, Any]:
    """The fields where a section's default instance differs from its class defaults.

    Why: a section given in part (`--set rollout.temperature=0.7`) must start from the
    enclosing config's default for that section (e.g. TrainConfig's rollout has the
    empty system prompt), not from the section class's own defaults."""
    if f.default_factory is dataclasses.MISSING:
        return {}
    default = f.default_factory()
    if not dataclasses.is_dataclass(default):
        return {}
    try:
        plain = type(default)()
    except TypeError:  # a section class with required fields has no defaults to differ from
        return {}
    out = {}
    for g in dataclasses.fields(default):
        mine, theirs = getattr(default, g.name), getattr(plain, g.name)
        if mine != theirs:
            out[g.name] = dataclasses.asdict(mine) if dataclasses.is_dataclass(mine) else mine
    return out


def _convert(value: Any, tp: Any, path: str) -> Any:
    if tp is Any:
        return _plain(value, path)
    if tp is type(None):
        if value is None:
            return None
        raise _bad(path, tp, value)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_union(value, tp, path)
    if origin is Literal:
        for allowed in typing.get_args(tp):
            if value == allowed and type(value) is type(allowed):
                return value
        raise _bad(path, tp, value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, path)
        raise _bad(path, tp, value)
    if origin in (list, tuple) or tp in (list, tuple):
        return _convert_sequence(value, tp, path)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise _bad(path, tp, value)
        args = typing.get_args(tp) or (Any, Any)
        out = {}
        for k, v in value.items():
            k2 = _convert(k, args[0], f"{path} (key {k!r})")
            out[k2] = _convert(v, args[1], _join(path, str(k)))
        return out
    return _convert_scalar(value, tp, path)


def _convert_union(value: Any, tp: Any, path: str) -> Any:
    args = typing.get_args(tp)
    if value is None:
        if type(None) in args:
            return None
        raise _bad(path, tp, value)
    arms = [a for a in args if a is not type(None)]
    if len(arms) == 1:
        # `X | None`: X's own error is the useful one (it names nested keys).
        return _convert(value, arms[0], path)
    for arm in arms:
        try:
            return _convert(value, arm, path)
        except ConfigError:
            continue
    raise _bad(path, tp, value)


def _convert_sequence(value: Any, tp: Any, path: str) -> Any:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise _bad(path, tp, value)
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} items ({_type_name(tp)}), got {len(value)}: {value!r}")
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    item = args[0] if args else Any
    items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _convert_scalar(value: Any, tp: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _bad(path, tp, value, " (write true or false)")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad(path, tp, value)
    if tp is float:
        if isinstance(value, bool):
            raise _bad(path, tp, value)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
            return float(value.strip().replace("_", ""))
        raise _bad(path, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        hint = " (quote it to make it a string)" if isinstance(value, (bool, int, float)) else ""
        raise _bad(path, tp, value, hint)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _bad(path, tp, value, " (unsupported field type)")


def _plain(value: Any, path: str) -> Any:
    """A copy of `value` if it is plain YAML data (tuples become lists), else an error."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{path}: keys must be strings, got {k!r}")
            out[k] = _plain(v, _join(path, k))
        return out
    raise ConfigError(f"{path}: expected plain YAML data, got {value!r} ({type(value).__name__})")


# ----------------------------------------------------------------------------- to_dict


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain data (dicts, lists, str, int, float, bool, None) for a dataclass instance;
    `from_dict(type(cfg), to_dict(cfg)) == cfg`.

    >>> from eapo.protocol.tags import Tags
    >>> to_dict(Tags())["answer_open"]
    '<answer>'
    """
    if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
        raise TypeError(f"to_dict needs a dataclass instance, got {cfg!r}")
    return _to_plain(cfg, "")


def _to_plain(value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name), _join(path, f.name)) for f in _fields(type(value))}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _to_plain(v, _join(path, str(k))) for k, v in value.items()}
    raise TypeError(f"{path}: {value!r} ({type(value).__name__}) is not plain YAML data")


# -------------------------------------------------------------------------------- YAML


def dump_yaml(cfg: Any) -> str:
    """The config as YAML, keys in field order; `load_yaml` reads it back equal."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file (an empty file is an empty mapping)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Build `cls` from a YAML file; absent keys take their defaults."""
    data = read_yaml(path)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


# --------------------------------------------------------------------------- overrides


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], cls: type | None = None) -> dict[str, Any]:
    """A copy of `data` with each `a.b.c=value` set; `data` itself is not changed.

    The value is parsed with `yaml.safe_load` (`true`, `3`, `[1, 2]`, `{k: v}`, `null`;
    an empty value is null). With `cls`, every key path is checked against the dataclass,
    so keys absent from `data` (left at their default) can be set, and a field typed as
    text (`str`, `str | None`, a `Literal` of strings) takes the value as written unless
    it is null, so `tags.answer_open=[A]` is the text "[A]"; without `cls`, only keys
    already in `data` can be set.

    >>> from eapo.rollout.config import RolloutConfig
    >>> apply_overrides({}, ["max_queries=1", "tags.answer_open=[A]"], RolloutConfig)
    {'max_queries': 1, 'tags': {'answer_open': '[A]'}}
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {e}") from e
        _set_path(out, key, value, raw, cls, item)
    return out


def _wants_str(tp: Any) -> bool:
    # A text field takes an override's text as written when YAML would read it as
    # something else (a list, a number, a bool); null still means None.
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        return all(_wants_str(a) for a in arms)
    if origin is Literal:
        return all(isinstance(a, str) for a in typing.get_args(tp))
    return tp is str


def _set_path(root: dict[str, Any], key: str, value: Any, raw: str, cls: type | None, item: str) -> None:
    parts = key.split(".")
    if any(not p.strip() for p in parts):
        raise ConfigError(f"override {item!r}: empty component in key path {key!r}")
    node: dict[str, Any] = root
    section: Any = cls  # a dataclass type, dict (anything goes below), or None (data only)
    path = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if dataclasses.is_dataclass(section):
            names = [f.name for f in _fields(section)]
            if part not in names:
                raise _unknown_key(path, part, names)
            child_section = _section_type(_hints(section)[part])
        elif section is dict:
            child_section = dict
        else:  # no schema: only what the data already has
            if part not in node:
                raise _unknown_key(path, part, [str(k) for k in node])
            child_section = None
        path = _join(path, part)
        if last:
            if dataclasses.is_dataclass(section) and value is not None and not isinstance(value, str):
                if _wants_str(_hints(section)[part]):
                    value = raw.strip()  # `tags.answer_open=[A]` means the text "[A]"
            node[part] = value
            return
        if section is not None and child_section is None:
            raise ConfigError(f"override {item!r}: '{path}' is a value, not a section, so it has no key {parts[i + 1]!r}")
        child = node.get(part)
        if not isinstance(child, dict):
            if section is None:
                raise ConfigError(f"override {item!r}: '{path}' is a value, not a section")
            child = {}  # absent, or null for an optional section: create it
            node[part] = child
        node = child
        section = child_section


def load_config(cls: type[T], path: str | Path | None, overrides: Sequence[str] = ()) -> T:
    """Defaults of `cls`, then the YAML file at `path` (if any), then `overrides`."""
    data = read_yaml(path) if path is not None else {}
    try:
        return from_dict(cls, apply_overrides(data, overrides, cls))
    except ConfigError as e:
        if path is None:
            raise
        raise ConfigError(f"{path}{' with overrides' if overrides else ''}: {e}") from e
