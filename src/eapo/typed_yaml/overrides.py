"""`--set a.b.c=value` overrides: set dotted key paths in plain config data, checked against
the dataclass.

Overrides are checked against the dataclass, not only the data, so a key left at its
default (absent from the YAML) can still be set; setting a key inside an optional section
that is absent or null creates that section. A mapping value replaces the whole subtree
(no deep merge), which keeps `a.b={...}` predictable. A text field takes the override as
written unless it is null (`tags.answer_open=[A]` is the text "[A]", not a list): what a
shell user types for a string should not depend on YAML's reading of it.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

import yaml

from eapo.typed_yaml.convert import ConfigError, init_fields, join_path, section_type, type_hints, unknown_key_error

__all__ = ["apply_overrides"]



def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], cls: type | None = None) -> dict[str, Any]:
    """A copy of `data` with each `a.b.c=value` set; `data` itself is not changed.

    The value is parsed with `yaml.safe_load` (`true`, `3`, `[1, 2]`, `{k: v}`, `null`;
    an empty value is null). With `cls`, every key path is checked against the dataclass,
    so keys absent from `data` (left at their default) can be set, and a field typed as
    text (`str`, `str | None`, a `Literal` of strings) takes the value as written unless
    it is null, so `tags.answer_open=[A]` is the text "[A]"; without `cls`, only keys
    already in `data` can be set.

    >>> from eapo.schema import RolloutConfig
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
            names = [f.name for f in init_fields(section)]
            if part not in names:
                raise unknown_key_error(path, part, names)
            child_section = section_type(type_hints(section)[part])
        elif section is dict:
            child_section = dict
        else:  # no schema: only what the data already has
            if part not in node:
                raise unknown_key_error(path, part, [str(k) for k in node])
            child_section = None
        path = join_path(path, part)
        if last:
            if dataclasses.is_dataclass(section) and value is not None and not isinstance(value, str):
                if _wants_str(type_hints(section)[part]):
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
