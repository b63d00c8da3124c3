"""Build the population model a config names (`model=mlp|hashednet|convnet`)."""
from functools import partial

import torch

from ..population import Population, stable_seed
from .convnet import PopulationConvNet
from .hashednet import HashedPopulationLinear
from .mlp import PopulationMLP, dense_layer

MODELS = ("mlp", "hashednet", "convnet")
N_CLASSES = 10


def build_model(cfg, population: Population, in_features: int):
    """An initialised model for every replica of `population`."""
    m, p, G, P = cfg.model, cfg.protocol, population.streams, population.per_stream
    if m.name == "convnet":
        model = PopulationConvNet(G, P, m.kernel, m.channels, m.stride, m.pool, m.dropout, int(in_features**0.5),
                                  N_CLASSES, population.seeds("dropout"))  # fmt: skip
    else:
        layer = dense_layer
        if m.name == "hashednet":
            hash_seeds = [stable_seed("hash", m.hash_seed, *(() if m.shared_hash else (r.seed,))) for r in population.replicas]
            layer = partial(HashedPopulationLinear, ratios=[r.ratio for r in population.replicas], hash_seeds=hash_seeds)
        sizes = [in_features, cfg.hidden, N_CLASSES]
        model = PopulationMLP(G, P, sizes, p.activation, layer)
    model.init_([torch.Generator().manual_seed(s) for s in population.seeds("init")], p.init)
    return model
