"""The model families the package ships (`model=mlp|hashednet|convnet`): a typed spec per family, built for a population.

`conf/model/<name>.yaml` names the spec as its `_target_`; `spec.build(population, features, protocol)` returns the
initialised population model. See `spec` for what a family says about itself.
"""
import math
from dataclasses import dataclass

from ..data.catalog import IMAGES
from ..errors import UserError
from ..population import Population, stable_seed
from ..typed import bounded
from .base import initialised
from .spec import ModelSpec
from .convnet import PopulationConvNet, convnet_flops, convnet_parameters, feature_side
from .hashednet import HashedPopulationMLP
from .mlp import PopulationMLP


def widths(hidden: int | list[int]) -> list[int]:
    """The hidden layers' widths of `model.hidden`: one integer (one layer) or a list of them, first layer first."""
    return list(hidden) if isinstance(hidden, (list, tuple)) else [hidden]


@dataclass
class MLP(ModelSpec):
    """The perceptron: `hidden` units wide (the paper's one hidden layer), or a list of widths, one per hidden layer
    (`[300, 100]`: LeNet-300-100)."""

    prunable = True
    linear_layers = True
    quantizable = True
    sized_by = ("hidden",)
    name: str = "mlp"
    # paper: 30-100
    hidden: int | list[int] = bounded(100, low=1, high=100_000, why="a population's weights must fit in memory")

    def check(self) -> None:
        # [100] is the net 100 is: one spelling per net, so that its results are stored (and found) under one key
        if isinstance(self.hidden, list) and len(self.hidden) == 1:
            raise UserError(f"model.hidden=[{self.hidden[0]}] is one hidden layer: write model.hidden={self.hidden[0]}")

    def sizes(self, features: int) -> list[int]:
        return [features, *widths(self.hidden), IMAGES.classes]

    @classmethod
    def stored_measures(cls, options: dict, nonzero_weights: float) -> dict:
        """A non-zero weight is one multiply-add; dense: every weight of the 784-hidden(-hidden...)-10 network, and its
        biases."""
        sizes = [IMAGES.features, *widths(options["hidden"]), IMAGES.classes]
        weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
        return {"flops": nonzero_weights, "dense_flops": weights, "dense_parameters": weights + sum(sizes[1:])}

    def build(self, population: Population, features: int, protocol):
        model = PopulationMLP(population.streams, population.per_stream, self.sizes(features), protocol.activation)
        return initialised(model, population, protocol)


@dataclass
class HashedNet(MLP):
    """HashedNet (Chen et al. 2015): the MLP with each layer's weights hashed into ceil(ratio * m) buckets;
    `shared_hash`: every replica uses the hashes of `hash_seed` (else each its own, from its seed). A pruning method
    removes buckets (`pruning.keep` of them kept)."""

    linear_layers = False  # its layers multiply by hashed virtual weights
    takes_ratio = True
    name: str = "hashednet"
    hash_seed: int = 0
    shared_hash: bool = True

    @classmethod
    def stored_measures(cls, options: dict, nonzero_weights: float) -> dict:
        """Every virtual weight is multiplied (hashing saves storage, not compute); dense: the virtual network."""
        virtual = super().stored_measures(options, nonzero_weights)
        return virtual | {"flops": virtual["dense_flops"]}

    def build(self, population: Population, features: int, protocol):
        seeds = [stable_seed("hash", self.hash_seed, *(() if self.shared_hash else (r.seed,))) for r in population.replicas]
        model = HashedPopulationMLP(population.streams, population.per_stream, self.sizes(features), protocol.activation,
                                    [r.ratio for r in population.replicas], seeds)  # fmt: skip
        return initialised(model, population, protocol)


@dataclass
class ConvNet(ModelSpec):
    """The paper's small ConvNet: conv (kernel x kernel, channels, stride) -> ReLU -> max-pool -> dropout -> linear."""

    sized_by = ("kernel", "channels", "stride", "pool")
    architecture_options = sized_by + ("dropout",)
    name: str = "convnet"
    kernel: int = bounded(5, low=1, high=IMAGES.side, why="the images' side")
    channels: int = bounded(8, low=1, high=1024, why="a population's feature maps must fit in memory")  # paper: 4-12
    stride: int = bounded(1, low=1, high=IMAGES.side, why="the images' side")
    pool: int = bounded(2, low=1, high=IMAGES.side, why="the images' side")
    dropout: float = bounded(0.0, low=0.0, high=0.999)

    def check(self) -> None:
        feature_side(IMAGES.side, self.kernel, self.stride, self.pool)

    @classmethod
    def stored_measures(cls, options: dict, nonzero_weights: float) -> dict:
        """Dense FLOPs and parameters from its architecture; its FLOPs those only when every weight is non-zero (a
        record does not say which of its weights, conv or linear, a zero one was: NaN then)."""
        size = [options[k] for k in ("kernel", "channels", "stride", "pool")]
        dense_flops, parameters = convnet_flops(*size), convnet_parameters(*size)
        dense = nonzero_weights == parameters - options["channels"] - IMAGES.classes  # the weights, not the biases
        return {"flops": dense_flops if dense else math.nan, "dense_flops": dense_flops, "dense_parameters": parameters}

    def build(self, population: Population, features: int, protocol):
        model = PopulationConvNet(population.streams, population.per_stream, self.kernel, self.channels, self.stride,
                                  self.pool, self.dropout, int(features**0.5), IMAGES.classes, population.seeds("dropout"))  # fmt: skip
        return initialised(model, population, protocol)
