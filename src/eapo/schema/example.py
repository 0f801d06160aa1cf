"""`examples/default.yaml`, generated from the schema: every key of `TrainConfig()` with its
default and its doc as a comment, sections in `TrainConfig`'s order.

    python -m eapo.schema.example > examples/default.yaml

A test checks that the checked-in file is this text and loads back as `TrainConfig()`.
A doc that fits goes after its key; a longer one goes above it, wrapped. An optional
section left null (`acceptance.adaptive`) and an empty list of sections
(`experts.members`) are followed by their keys commented out, with the class defaults.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import typing
from typing import Any

import yaml

from eapo.schema.docs import field_docs, nested_section
from eapo.schema.run import TrainConfig
from eapo.typed_yaml import to_dict

__all__ = ["COMMAND", "default_yaml", "render"]

COMMAND = "python -m eapo.schema.example > examples/default.yaml"
WIDTH = 100  # longest line
COLUMN = 29  # where a comment after a key starts, when the key is shorter

HEADER = f"""\
# The default EAPO training run, every key written out with its default value and its doc.
# Generated from the schema (src/eapo/schema/), not edited by hand:
#   {COMMAND}
# Loading this file gives exactly `eapo.schema.TrainConfig()` (a test checks it).
# Copy it, change what you need (absent keys keep their defaults), or override single
# keys from the command line: --set rl.steps=10 --set acceptance.kind=linear
# "(ours)" marks a choice the paper leaves open (see EAPO.md).
"""


def _flow(value: Any) -> str:
    """One plain value as YAML on one line (`null`, `[1, 2, 4]`, `{}`, `'<answer>'`)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _class_defaults(cls: type) -> dict[str, Any]:
    """The plain default of every field of `cls` (for sections shown commented out)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = _plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            out[f.name] = to_dict(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


def _keyed(pad: str, key: str, doc: str, width: int) -> list[str]:
    """`key` with its doc: after it when the line fits in `width`, else wrapped above it."""
    flat = " ".join(doc.split())
    inline = f"{key.ljust(COLUMN - len(pad) - 2)}  # {flat}" if flat else key
    if len(pad) + len(inline) <= width or not flat:
        return [pad + inline]
    wrapped = textwrap.wrap(flat, width=width - len(pad) - 2, break_on_hyphens=False)
    return [f"{pad}# {line}" for line in wrapped] + [pad + key]


def render(cls: type, data: dict[str, Any], indent: int = 0, width: int = WIDTH) -> list[str]:
    """The lines of section `cls` with plain values `data` (as `to_dict` gives them)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    pad = " " * indent
    lines: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        value, nested = data[f.name], nested_section(hints[f.name])
        if indent == 0 and lines and isinstance(value, dict):
            lines.append("")
        if nested and nested[0] == "section" and isinstance(value, dict):
            lines += _keyed(pad, f"{f.name}:", docs.get(f.name, ""), width)
            lines += render(nested[1], value, indent + 2, width)
            continue
        lines += _keyed(pad, f"{f.name}: {_flow(value)}", docs.get(f.name, ""), width)
        if nested and not value:  # a null section or an empty list: its keys, commented out
            lines += _commented(f.name, *nested, indent, width)
    return lines


def _commented(name: str, kind: str, cls: type, indent: int, width: int) -> list[str]:
    """The keys of `cls` with its class defaults, commented out under the key `name`."""
    inner = indent + (4 if kind == "list" else 2)
    body = render(cls, _class_defaults(cls), inner, width - 2)
    if kind == "list":  # the first key (after its doc) carries the item's `- `
        first = next(i for i, line in enumerate(body) if not line.lstrip().startswith("#"))
        body[first] = body[first][: inner - 2] + "- " + body[first][inner:]
    pad = " " * indent
    head = f"{pad}# {name}:  ({cls.__name__}'s keys and defaults, to set instead)"
    return [head] + [f"{pad}# {line[indent:]}" for line in body]


def default_yaml() -> str:
    """The text of `examples/default.yaml`."""
    return HEADER + "\n" + "\n".join(render(TrainConfig, to_dict(TrainConfig()))) + "\n"


def main() -> None:
    sys.stdout.write(default_yaml())


if __name__ == "__main__":
    main()
