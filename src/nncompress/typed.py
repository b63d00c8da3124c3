"""Typed config nodes: dataclasses that a config node builds through its `_target_`, checking their own values.

Hydra's structured configs check types too, but while composing, with a multi-line message; these check when the
node is built (before any training) and say what is wrong in one line naming the config key.
"""
import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Literal

from .errors import UserError


def integer(value, name: str, low: int | None = None, high: int | None = None, why: str = "") -> int:
    """`value` as an int in [low, high], or a one-line UserError naming the config key (and `why`, what `high`
    protects against)."""
    try:
        number = int(str(value))
    except ValueError:
        # `1e9` arrives as the float 1e+09, which the run's record (so its key) would keep: refused, not converted
        digits = " written in digits" if isinstance(value, float) and value.is_integer() else ""
        raise UserError(f"{name} must be an integer{digits}, got '{value}'") from None
    if low is not None and number < low:
        raise UserError(f"{name} must be at least {low}, got {number}")
    if high is not None and number > high:
        raise UserError(f"{name} must be at most {high}{f' ({why})' if why else ''}, got {number}")
    return number


def real(value, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """`value` as a finite float in [low, high], or a one-line UserError naming the config key."""
    try:
        number = float(str(value))
    except ValueError:
        raise UserError(f"{name} must be a number, got '{value}'") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise UserError(f"{name} must be a finite number in [{low:g}, {high:g}], got {value}")
    return number


def boolean(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise UserError(f"{name} must be true or false, got '{value}'")


# The most epochs a run may train (protocol.epochs, or a pruning timetable; the paper's takes 450): a population
# takes from seconds to minutes an epoch, so more would run for months.
MAX_EPOCHS = 100_000
LONG_RUN = "more would run for months"


def bounded(default, low=None, high=None, why: str = ""):
    """A field whose value must lie in [low, high]; `why`: what `high` protects against, for an int's message."""
    return dataclasses.field(default=default, metadata={"low": low, "high": high, "why": why})


def listed(value) -> bool:
    """Whether `value` is a list of values (a YAML or command-line list: a ListConfig), not one value."""
    return isinstance(value, Sequence) and not isinstance(value, str)


def convert(value, kind, name: str, low=None, high=None, why: str = ""):
    """`value` as type `kind` (int, float, bool, str, a Literal of choices, list[X] of at least one X, or a union of
    these and None: a list value takes the union's list type, any other its first), or a one-line UserError."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value is None:
            return None
        kinds = [k for k in typing.get_args(kind) if k is not type(None)]
        kind = next((k for k in kinds if typing.get_origin(k) is list), kinds[0]) if listed(value) else kinds[0]
    if typing.get_origin(kind) is list:
        if not listed(value) or not value:
            raise UserError(f"{name} must be a non-empty list, got '{value}'")
        (item,) = typing.get_args(kind)
        return [convert(v, item, f"{name}[{i}]", low, high, why) for i, v in enumerate(value)]
    if typing.get_origin(kind) is Literal:
        if value not in typing.get_args(kind):
            raise UserError(f"unknown {name} '{value}' (choose from: {', '.join(map(str, typing.get_args(kind)))})")
        return value
    if kind is bool:
        return boolean(value, name)
    if kind is int:
        return integer(value, name, low, high, why)
    if kind is float:
        return real(value, name, -math.inf if low is None else low, math.inf if high is None else high)
    return kind(value)


class Typed:
    """Base of a typed config node: after the dataclass's __init__, every field is converted to its annotated type
    (within its `bounded` range) or refused in one line, then `check` tests what types cannot say."""

    node = ""  # the config key of the node, for messages

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = convert(getattr(self, f.name), hints[f.name], f"{self.node}.{f.name}".lstrip("."), **f.metadata)
            object.__setattr__(self, f.name, value)  # frozen ones too
        self.check()

    def check(self) -> None:
        """Constraints between fields, beyond their types (none by default)."""


def construct(node, **kwargs):
    """`hydra.utils.instantiate(node, **kwargs)`, its errors in one line: a node's own UserError as it is, any other
    failure (an unknown option, a missing one) as `<config key>: <first line>`."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        where = getattr(node, "_get_full_key", lambda _: "")("") or "config"
        raise UserError(f"{where}: {str(cause or err).splitlines()[0]}") from None
