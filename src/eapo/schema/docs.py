"""The doc under each config field, read from the source (cleanrl's `Args` style: a string
literal on the line after the field), and the walk over every section of a config.

Why from the source: Python keeps no docstring for a dataclass field, and writing each doc
twice (a comment and a `metadata=` string) is how they drift apart. `examples/default.yaml`
is generated from these docs (`eapo.schema.example`), and a test checks that every field
reachable from `TrainConfig` has one.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import sys
import types
import typing
from typing import Any, Union

__all__ = ["field_docs", "nested_section", "sections"]


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its doc (cleaned, lines kept) for the dataclass `cls`; a field with no
    string literal right after it is absent."""
    tree = ast.parse(inspect.getsource(sys.modules[cls.__module__]))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    docs: dict[str, str] = {}
    body = node.body
    for stmt, after in zip(body, body[1:]):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def nested_section(tp: Any) -> tuple[str, type] | None:
    """("section", C) for a field typed as dataclass C or `C | None`; ("list", C) for a
    tuple or list of C; None for a plain value."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        return nested_section(arms[0]) if len(arms) == 1 else None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return ("section", tp)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) == 1 and dataclasses.is_dataclass(args[0]):
            return ("list", args[0])
    return None


def sections(cls: type) -> list[type]:
    """`cls` and every dataclass reachable through its fields, each once, in field order."""
    out: list[type] = []

    def walk(c: type) -> None:
        if c in out:
            return
        out.append(c)
        hints = typing.get_type_hints(c)
        for f in dataclasses.fields(c):
            nested = nested_section(hints[f.name])
            if nested is not None:
                walk(nested[1])

    walk(cls)
    return out
