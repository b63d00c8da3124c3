"""The models a config builds (`model=mlp|hashednet|convnet`): a typed spec per family, built for a population.

`conf/model/<name>.yaml` names the spec as its `_target_`; `spec.build(population, features, protocol)` returns the
initialised population model.
"""
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch

from ..errors import UserError
from ..population import Population, stable_seed
from ..typed import Typed, bounded
from .convnet import PopulationConvNet, conv_output_side
from .hashednet import HashedPopulationLinear
from .mlp import PopulationMLP, dense_layer

N_CLASSES = 10
SIDE = 28  # MNIST's images are SIDE x SIDE pixels


@dataclass
class MLP(Typed):
    """The paper's one-hidden-layer perceptron, `hidden` units wide."""

    node: ClassVar[str] = "model"
    name: str = "mlp"
    hidden: int = bounded(100, low=1, high=100_000, why="a population's weights must fit in memory")  # paper: 30-100

    def layer(self, population: Population):
        return dense_layer

    def build(self, population: Population, features: int, protocol):
        sizes = [features, self.hidden, N_CLASSES]
        model = PopulationMLP(population.streams, population.per_stream, sizes, protocol.activation, self.layer(population))
        return initialised(model, population, protocol)

    def size_label(self) -> str:
        return f"h{self.hidden}"


@dataclass
class HashedNet(MLP):
    """HashedNet (Chen et al. 2015): the MLP with each layer's weights hashed into ceil(ratio * m) buckets;
    `shared_hash`: every replica uses the hashes of `hash_seed` (else each its own, from its seed)."""

    name: str = "hashednet"
    hash_seed: int = 0
    shared_hash: bool = True

    def layer(self, population: Population):
        seeds = [stable_seed("hash", self.hash_seed, *(() if self.shared_hash else (r.seed,))) for r in population.replicas]
        return partial(HashedPopulationLinear, ratios=[r.ratio for r in population.replicas], hash_seeds=seeds)


@dataclass
class ConvNet(Typed):
    """The paper's small ConvNet: conv (kernel x kernel, channels, stride) -> ReLU -> max-pool -> dropout -> linear."""

    node: ClassVar[str] = "model"
    name: str = "convnet"
    kernel: int = bounded(5, low=1, high=SIDE, why="the images' side")
    channels: int = bounded(8, low=1, high=1024, why="a population's feature maps must fit in memory")  # paper: 4-12
    stride: int = bounded(1, low=1, high=SIDE, why="the images' side")
    pool: int = bounded(2, low=1, high=SIDE, why="the images' side")
    dropout: float = bounded(0.0, low=0.0, high=0.999)

    def check(self) -> None:
        if conv_output_side(SIDE, self.kernel, self.stride, self.pool) < 1:
            raise UserError(f"convnet kernel={self.kernel} channels={self.channels} stride={self.stride} pool={self.pool} "
                            f"leaves no feature map of a {SIDE}-pixel image")

    def build(self, population: Population, features: int, protocol):
        model = PopulationConvNet(population.streams, population.per_stream, self.kernel, self.channels, self.stride,
                                  self.pool, self.dropout, int(features**0.5), N_CLASSES, population.seeds("dropout"))  # fmt: skip
        return initialised(model, population, protocol)

    def size_label(self) -> str:
        return f"k{self.kernel}c{self.channels}s{self.stride}p{self.pool}"


def initialised(model, population: Population, protocol):
    model.init_([torch.Generator().manual_seed(s) for s in population.seeds("init")], protocol.init)
    return model
