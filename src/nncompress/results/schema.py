"""A stored record is data, never code: the fields it must hold, the key format, and the classes its config may name.

Records reach us from stores and `results.jsonl` files other people wrote. One is used only once it passes
`problem()` (no string in it holds an OmegaConf interpolation: a resolved config never does, and `${oc.env:...}` would
read the reader's environment), and only the package's own config classes (`known_targets`) are ever imported or
built from it.
"""
import functools
import math
import re

import yaml

from ..resources import CONF_DIR

KEY = re.compile(r"[0-9a-f]{16}")  # results.config_key: the first 16 hex digits of a sha256


def is_key(value) -> bool:
    """Whether `value` is a key as the store names its files (so it can never climb out of a folder)."""
    return isinstance(value, str) and KEY.fullmatch(value) is not None


@functools.cache
def known_targets() -> frozenset[str]:
    """Every `_target_` the package's own config files name: the only classes a foreign config may build."""
    found = set()

    def collect(node):
        if isinstance(node, dict):
            if isinstance(node.get("_target_"), str):
                found.add(node["_target_"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for path in CONF_DIR.rglob("*.yaml"):
        collect(yaml.safe_load(path.read_text()))
    return frozenset(found)


def integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def fraction(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def count(v) -> bool:
    return integer(v) and v >= 0


def positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # a name a report puts in a file name: no folders, no "../"


def plain_name(v) -> bool:
    return isinstance(v, str) and NAME.fullmatch(v) is not None


def named_node(v) -> bool:
    return isinstance(v, dict) and plain_name(v.get("name"))


MODEL_SIZES = ("hidden", "kernel", "channels", "stride", "pool")  # what reports read as integers


def size(v) -> bool:
    return integer(v) and v > 0


def sized_model(v) -> bool:
    """Each size a positive integer; `hidden` one, or a list of two or more (a deeper MLP: one per hidden layer)."""
    deeper = isinstance(v.get("hidden"), list) and len(v["hidden"]) > 1 and all(map(size, v["hidden"]))
    return all(size(v[k]) or (k == "hidden" and deeper) for k in MODEL_SIZES if k in v)


# field: (required, test, what it must be)
FIELDS = {
    "key": (True, is_key, "16 hexadecimal digits"),
    "dataset": (True, plain_name, "a dataset name (letters, digits, _ . + -)"),
    "seed": (True, integer, "an integer"),
    "ratio": (True, lambda v: fraction(v) and v > 0, "a number in (0, 1]"),
    "test_acc": (True, fraction, "a finite number in [0, 1]"),
    "config": (True, lambda v: isinstance(v, dict) and all(named_node(v.get(n)) for n in ("model", "method", "protocol"))
               and isinstance(v.get("dataset"), dict) and sized_model(v["model"]),
               "a config with model, method and protocol nodes named by plain names, its model's sizes integers"),  # fmt: skip
    "train_acc": (False, fraction, "a finite number in [0, 1]"),
    "val_acc": (False, fraction, "a finite number in [0, 1]"),
    "source": (False, lambda v: isinstance(v, str), "a string"),
    "learned": (False, lambda v: isinstance(v, bool), "true or false"),
    "parameters": (False, count, "a non-negative integer"),
    "nonzero_weights": (False, count, "a non-negative integer"),
    "total_weights": (False, count, "a non-negative integer"),
    "artefact_bytes": (False, count, "a non-negative integer"),
    "flops": (False, count, "a non-negative integer"),
    "dense_flops": (False, count, "a non-negative integer"),
    "dense_parameters": (False, count, "a non-negative integer"),
    "speedup": (False, lambda v: v is None or positive(v), "a positive number or null"),
    "compression": (False, lambda v: v is None or positive(v), "a positive number or null"),
    "run_dir": (False, lambda v: isinstance(v, str), "a string"),
}


def strings(node):
    """Every string in a JSON tree, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def targets(node):
    """Every `_target_` value in a JSON tree."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield node["_target_"]
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from targets(value)


def problem(record) -> str | None:
    """What is wrong with a record read from elsewhere, in a few words; None when it can be used."""
    if not isinstance(record, dict):
        return f"not a JSON object but a {type(record).__name__}"
    for name, (required, test, want) in FIELDS.items():
        if name not in record:
            if required:
                return f"no '{name}'"
        elif not test(record[name]):
            return f"'{name}' must be {want}, got {str(record[name])[:40]!r}"
    if any("${" in s for s in strings(record)):
        return "holds an interpolation ('${...}'), which a stored record never does"
    return None


def foreign_target(node) -> str | None:
    """The first `_target_` in `node` that is not one of the package's own config classes (None: all are): a
    record may name a user's class (a criterion of their own), but only the package's are ever built from one."""
    return next((t for t in targets(node) if t is not None and t not in known_targets()), None)
