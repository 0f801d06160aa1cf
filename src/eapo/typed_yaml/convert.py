"""Plain data <-> frozen dataclasses: the strict converter under every config of the project.

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

Not here: YAML files (`eapo.typed_yaml.files`), `--set` overrides
(`eapo.typed_yaml.overrides`), anything about a particular run (that is `eapo.schema`),
and no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

__all__ = [
    "ConfigError",
    "from_dict",
    "init_fields",
    "join_path",
    "section_type",
    "to_dict",
    "type_hints",
    "unknown_key_error",
]

T = TypeVar("T")

# What YAML 1.1 leaves as a string but a person means as a number: 1e-5, 3E+2, -2.5e3.
_NUMERIC = re.compile(r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A configuration that cannot be built; the message names the dotted path."""


# ------------------------------------------------------------------------------ helpers


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    # Modules use `from __future__ import annotations`, so field types are strings until
    # resolved here, in the namespace of the module that defined the class.
    return typing.get_type_hints(cls)


def init_fields(cls: type) -> list[dataclasses.Field]:
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


def unknown_key_error(path: str, key: str, allowed: Sequence[str]) -> ConfigError:
    dotted = join_path(path, key)
    close = difflib.get_close_matches(key, list(allowed), n=3, cutoff=0.6)
    suggestion = f" Did you mean {' or '.join(repr(join_path(path, c)) for c in close)}?" if close else ""
    level = f"under '{path}'" if path else "at the top level"
    return ConfigError(f"unknown key '{dotted}'.{suggestion} Allowed keys {level}: {', '.join(allowed)}")


def section_type(tp: Any) -> Any:
    """The dataclass or mapping type a key path may descend into, or None for a leaf.
    `X | None` is looked through, since a key below an optional section creates it."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = [section_type(a) for a in typing.get_args(tp) if a is not type(None)]
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
    eapo.typed_yaml.convert.ConfigError: lr: expected float, got True (bool)
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    if not isinstance(data, Mapping):
        raise _bad(path, cls, data)
    fields = init_fields(cls)
    names = [f.name for f in fields]
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{path or '(top level)'}: keys must be strings, got {key!r}")
        if key not in names:
            raise unknown_key_error(path, key, names)
    hints = type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.name in data:
            value = data[f.name]
            if isinstance(value, Mapping):
                value = {**_factory_overrides(f), **value}
            kwargs[f.name] = _convert(value, hints[f.name], join_path(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{join_path(path, f.name)}: required key is missing")
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
            out[k2] = _convert(v, args[1], join_path(path, str(k)))
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
            out[k] = _plain(v, join_path(path, k))
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
        return {f.name: _to_plain(getattr(value, f.name), join_path(path, f.name)) for f in init_fields(type(value))}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _to_plain(v, join_path(path, str(k))) for k, v in value.items()}
    raise TypeError(f"{path}: {value!r} ({type(value).__name__}) is not plain YAML data")
