"""What a model family says about itself, so that code outside models/ never names one.

A family is two classes: its config spec (a `ModelSpec`, the `_target_` of `conf/model/<name>.yaml`, or of a user's
own file through `--config-dir`), which tells the checks, run names and report rows what they need before anything
is built (and without torch); and the population model it builds (a `base.PopulationModel`).
"""
import importlib
import math
from abc import ABC, abstractmethod
from functools import cache
from typing import TYPE_CHECKING, ClassVar

import yaml

from ..resources import CONF_DIR
from ..typed import Typed

if TYPE_CHECKING:
    from .base import PopulationModel


class ModelSpec(Typed, ABC):
    """A family's config node: what the rest of the package may know about the family, and `build`.

    Itself it stands for a family the package does not know (a record naming a user's model): no options of
    its own, nothing pruned.
    """

    node: ClassVar[str] = "model"
    prunable: ClassVar[bool] = False  # the pruning methods apply (a replica's ratio is what they keep, unless...)
    takes_ratio: ClassVar[bool] = False  # ...the ratio sizes the model itself (HashedNet's buckets; pruning.keep)
    # Each of its `layers` computes x @ W + b of the input it is called with, W its weights as stored: a layer-wise
    # criterion (OBS) reads those inputs through forward hooks and rewrites W.
    linear_layers: ClassVar[bool] = False
    # Its `layers` hold all its weights, each layer's in its `stored` parameter (an MLP's weights, a HashedNet's
    # buckets): the quantization stage shares their values.
    quantizable: ClassVar[bool] = False
    sized_by: ClassVar[tuple[str, ...]] = ()  # the options giving its size, as in a run's name (`h100`, `k5c8s1p2`)
    architecture_options: ClassVar[tuple[str, ...]] = ()  # a report row's `architecture` (`k5-c8-s1-p2-d0.0`)

    @abstractmethod
    def build(self, population, features: int, protocol) -> "PopulationModel":
        """The initialised population model of `population`, reading `features` inputs."""

    @classmethod
    def role(cls) -> str:
        """How reports read the family's rows: `pruned` (the pruning methods compress it), `sized` (its ratio sizes
        it: compressed by construction, pruned further where its record names a method), `reference` (uncompressed architectures, compared as a Pareto front), or
        `other` (a family the package does not ship: listed, never compared)."""
        if cls.takes_ratio:
            return "sized"
        return "pruned" if cls.prunable else "reference" if cls.architecture_options else "other"

    def size_label(self) -> str:
        return self.sized_label({option: getattr(self, option) for option in self.sized_by})

    @classmethod
    def sized_label(cls, options: dict) -> str:
        """The size of a model with these options, as in a run's name: `h100`, `k5c8s1p2` (empty for families
        without one)."""
        return "".join(f"{option[0]}{value_label(options[option])}" for option in cls.sized_by)

    @classmethod
    def stored_measures(cls, options: dict, nonzero_weights: float) -> dict:
        """flops, dense_flops and dense_parameters (see `measures`) of a stored replica with these model options and
        non-zero weights (NaN when its record has none), for a record stored before they were measured; NaN where
        they cannot be told (all of them for a family the package does not ship)."""
        return dict.fromkeys(("flops", "dense_flops", "dense_parameters"), math.nan)

    @classmethod
    def architecture_label(cls, options: dict) -> str:
        """A report row's `architecture`, from its record's model options (empty for families without one)."""
        return "-".join(f"{option[0]}{options[option]}" for option in cls.architecture_options)


def value_label(value) -> str:
    """An option's value in a label: a list's items joined by `-` (`model.hidden=[300,100]`: `300-100`)."""
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


@cache
def families() -> dict[str, type[ModelSpec]]:
    """name -> spec class of each family the package ships (`conf/model/*.yaml`): only these classes are imported
    for what a record says."""
    found = {}
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        module, _, name = node["_target_"].rpartition(".")
        found[node["name"]] = getattr(importlib.import_module(module), name)
    return found


def family(name: str) -> type[ModelSpec]:
    """The spec class of a record's `model.name`: `ModelSpec` itself for a family the package does not ship."""
    return families().get(name, ModelSpec)
