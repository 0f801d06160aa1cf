"""Small checks shared by the config sections: one error message shape,
`section.key must be ..., got ...`, so a bad value in a YAML file or a `--set` names the
key to fix."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_count", "check_int", "check_lengths", "check_one_of", "check_real", "check_unit"]


def check_int(section: str, name: str, value: Any, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{section}.{name} must be an int >= {low}, got {value!r}")


def check_real(section: str, name: str, value: Any, low: float = 0.0, high: float = math.inf, *, open_low: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bound = f"> {low}" if open_low else f">= {low}"
        rng = f"in [{low}, {high}]" if math.isfinite(high) else f"a finite number {bound}"
        raise ValueError(f"{section}.{name} must be {rng}, got {value!r}")


def check_one_of(section: str, name: str, value: Any, allowed: Any) -> None:
    if value not in allowed:
        raise ValueError(f"{section}.{name} must be one of {', '.join(allowed)}, got {value!r}")


def check_lengths(section: str, min_len: int, max_len: int) -> None:
    check_int(section, "min_len", min_len)
    check_int(section, "max_len", max_len)
    if min_len > max_len:
        raise ValueError(f"{section}.min_len ({min_len}) must be <= {section}.max_len ({max_len})")


def check_unit(name: str, value: float) -> None:
    """A rate: a real number in [0, 1] (`name` is the whole dotted name)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def check_count(name: str, value: int) -> None:
    """A count of steps or turns: an int >= 1 (`name` is the whole dotted name)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
