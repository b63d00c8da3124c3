"""Experiment keys: a replica's result depends on its config's constructor tree, dataset, seed and ratio; the key
hashes those, non-default options only (OpenLTH's rule), so an option added later with its old behaviour as the
default changes no key.
"""
import functools
import hashlib
import importlib
import inspect
import json
import sys

from ..resources import conf_options
from .schema import known_targets

# What a replica's result depends on, besides its dataset, seed and ratio: the rest of a config says where, how
# or under which preset a run is done (data_dir, logger, accelerator, cuda_graph, histogram_epochs, ...).
KEY_NODES = ("model", "method", "pruning", "protocol", "dataset")
KEY_SETTINGS = {"precision": "32-true", "deterministic": True, "common_random_numbers": False}  # their defaults


def without_defaults(node):
    """`node` with every option a `_target_` class takes at its default left out, recursively (`_partial_` too):
    a key then names what was set, so an option added later with the default earlier runs had changes no key
    (OpenLTH's rule; hence a default is never changed, a new option is added instead)."""
    if isinstance(node, list):
        return [without_defaults(v) for v in node]
    if not isinstance(node, dict):
        return node
    defaults = target_defaults(node["_target_"]) if node.get("_target_") else {}
    return {k: without_defaults(v) for k, v in node.items()
            if k != "_partial_" and not (k in defaults and defaults[k] == v)}  # fmt: skip


def target_defaults(target: str) -> dict:
    """The defaults of `target`'s constructor. Only the package's own config classes are imported for it; another
    class is looked up only when its module is already imported (built from this run's own config), never from a
    record's say-so. Otherwise none: its options then all count, alike for every replica of it."""
    module, _, name = str(target).rpartition(".")
    if target in known_targets():
        return constructor_defaults(module, name)
    found = getattr(sys.modules.get(module), name, None)
    return {} if found is None else defaults_of(found)


@functools.cache
def constructor_defaults(module: str, name: str) -> dict:
    return defaults_of(getattr(importlib.import_module(module), name))


def defaults_of(constructor) -> dict:
    try:
        parameters = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):  # not a callable with a signature
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def replica_config(config: dict, dataset: str, seed: int, ratio: float) -> dict:
    """The resolved config of one replica: the population's config with its own dataset, seed and ratio."""
    return {**config, "dataset": {**config["dataset"], "name": dataset}, "seeds": [seed], "ratio": ratio}


def prunes(config: dict) -> bool:
    """Whether the replica's method prunes (has a saliency): its `pruning` node applies only then."""
    return bool((config.get("method") or {}).get("saliency"))


def quantizes(config: dict) -> bool:
    """Whether the replica's weights were quantized: its `quantize` node builds a quantizer (a record without that
    node, from before it existed, or with `quantize=none` was not)."""
    return bool((config.get("quantize") or {}).get("_target_"))


def applied(config: dict) -> dict:
    """`config` with an option that cannot change its result set to what its conf file gives: under a method that
    prunes, `protocol.epochs` (pruning's timing ends the run) is its protocol file's, so setting it splits neither
    a key nor a report's variants, and keys stored before this rule stay as they were."""
    preset = conf_options("protocol", str(config["protocol"].get("name"))).get("epochs")
    if not prunes(config) or preset is None or config["protocol"].get("epochs", preset) == preset:
        return config
    return {**config, "protocol": {**config["protocol"], "epochs": preset}}


def experiment(config: dict, dataset: str, seed: int, ratio: float, source: str) -> dict:
    """What a replica's result depends on, non-defaults only: its nodes (the pruning node only for a method that
    prunes, the quantize node only where it quantizes, so `quantize=none` changes no key; names left out, the
    `_target_`s say what was built; options that do not apply as `applied` sets them), the data source it used, seed
    and ratio."""
    c = applied(replica_config(config, dataset, seed, ratio))
    tree = {k: c[k] for k in KEY_NODES if k != "pruning" or prunes(c)}
    if quantizes(c):
        tree["quantize"] = {k: v for k, v in c["quantize"].items() if k != "name"}
    tree["method"] = {k: v for k, v in tree["method"].items() if k != "name"}
    tree["protocol"] = {k: v for k, v in tree["protocol"].items() if k != "name"}
    tree["dataset"] = {**tree["dataset"], "source": source}
    tree |= {k: c[k] for k, default in KEY_SETTINGS.items() if c.get(k, default) != default}
    return without_defaults(tree) | {"seed": seed, "ratio": ratio}


def experiment_key(config: dict, dataset: str, seed: int, ratio: float, source: str) -> str:
    """Names the experiment a replica is (a hash of `experiment`)."""
    return config_key(experiment(config, dataset, seed, ratio, source))


def config_key(config: dict) -> str:
    """Hash naming an experiment by its hyperparameters (stable across key order)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
