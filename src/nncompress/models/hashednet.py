"""HashedNet (Chen et al., ICML 2015): each layer's virtual weights share K real values chosen by a hash.

V_ij = xi(i, j) * w[h(i, j)], with h a hash of (layer, i, j) into [0, K) and xi a second hash into {-1, +1}.
The hashes are computed, not stored: a compact model is its buckets plus its hash seed, and the same seed
gives the same buckets on every machine (64-bit integer mixing, no platform RNG).
"""
import math
from functools import partial

import numpy as np
import torch
from torch import nn

from .layers import PopulationLinear, draw_biases, draw_weights
from .mlp import PopulationMLP

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijective avalanche mix of 64-bit integers (wrapping arithmetic)."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def edge_hash(seed: int, layer: int, salt: int, n_edges: int) -> np.ndarray:
    """64-bit hashes of edges 0..n_edges-1 (edge (i, j) of an in x out layer is i * out + j)."""
    base = mix64(np.array([seed & (2**64 - 1)], dtype=np.uint64) ^ mix64(np.array([layer * 2 + salt], dtype=np.uint64)))
    with np.errstate(over="ignore"):
        return mix64(base + np.arange(n_edges, dtype=np.uint64))


def bucket_count(ratio: float, n_edges: int) -> int:
    """K = max(1, ceil(ratio * m)) real weights for m virtual ones."""
    return max(1, math.ceil(ratio * n_edges - 1e-9))


def bucket_index(seed: int, layer: int, n_edges: int, buckets: int) -> np.ndarray:
    return (edge_hash(seed, layer, 0, n_edges) % np.uint64(buckets)).astype(np.int64)


def edge_sign(seed: int, layer: int, n_edges: int) -> np.ndarray:
    return 1.0 - 2.0 * (edge_hash(seed, layer, 1, n_edges) >> np.uint64(63)).astype(np.float32)


class HashedPopulationLinear(PopulationLinear):
    """A population of hashed layers: replica r has K_r buckets (from its ratio) and its own hash seed."""

    def __init__(self, streams: int, per_stream: int, in_features: int, out_features: int, layer: int,
                 ratios: list[float], hash_seeds: list[int]):  # fmt: skip
        super().__init__(streams, per_stream, in_features, out_features)
        self.layer, self.hash_seeds = layer, list(hash_seeds)  # what an exported replica needs to rebuild its hash
        del self.weight  # replaced by the buckets and the hashed virtual weight
        m = in_features * out_features
        self.bucket_counts = [bucket_count(r, m) for r in ratios]
        offsets = np.cumsum([0] + self.bucket_counts[:-1])
        self.buckets = nn.Parameter(torch.empty(sum(self.bucket_counts)))
        index = [torch.from_numpy(o + bucket_index(s, layer, m, k)) for o, s, k in zip(offsets, hash_seeds, self.bucket_counts)]
        sign = [torch.from_numpy(edge_sign(s, layer, m)) for s in hash_seeds]
        # Recomputable from the seeds, so not saved with the model.
        self.register_buffer("index", self.from_replicas(torch.stack(index).view(-1, in_features, out_features)), persistent=False)
        self.register_buffer("sign", self.from_replicas(torch.stack(sign).view(-1, in_features, out_features)), persistent=False)

    def effective_weight(self) -> torch.Tensor:
        # Autograd through the gather sums the virtual weights' gradients into each bucket, as Chen et al. train it.
        return self.buckets[self.index] * self.sign

    def real_weights(self) -> torch.Tensor:
        """Buckets per replica (R,): the real weights behind the virtual ones."""
        return torch.tensor(self.bucket_counts)

    def multiplies(self) -> torch.Tensor:
        """Every virtual weight, per replica (R,): hashing saves storage, not compute."""
        return torch.full((self.replicas,), self.in_features * self.out_features)

    @torch.no_grad()
    def init_(self, generators: list[torch.Generator], scheme: str) -> None:
        """Buckets drawn like weights of this layer's fan-in; replicas of one stream draw in turn."""
        i, o = self.in_features, self.out_features
        per_generator = self.replicas // len(generators)
        for r, chunk in enumerate(self.buckets.split(self.bucket_counts)):
            chunk.copy_(draw_weights(scheme, (len(chunk),), i, generators[r // per_generator]))
        b = torch.stack([draw_biases(scheme, o, i, g) for g in generators])
        self.bias.view(self.replicas, o).copy_(b.repeat_interleave(per_generator, 0))


class HashedPopulationMLP(PopulationMLP):
    """The MLP with hashed layers: replica r has ratio `ratios[r]` and hash seed `hash_seeds[r]`."""

    compactable = False  # its subset is a dense MLP: nothing a training step could write back into buckets

    def __init__(self, streams: int, per_stream: int, sizes: list[int], activation: str, ratios: list[float],
                 hash_seeds: list[int]):  # fmt: skip
        super().__init__(streams, per_stream, sizes, activation, partial(HashedPopulationLinear, ratios=ratios, hash_seeds=hash_seeds))

    @torch.no_grad()
    def artefact(self, r: int, dense: bool = False, values: torch.dtype = torch.float32) -> tuple[dict, dict]:
        """`hashed-mlp`: the buckets, the hash seed and each layer's bucket count (the virtual weights are rebuilt
        from them)."""
        tensors = {f"layers.{i}.bias": layer.replica_bias()[r] for i, layer in enumerate(self.layers)}
        for i, layer in enumerate(self.layers):
            tensors[f"layers.{i}.buckets"] = layer.buckets.split(layer.bucket_counts)[r]
        seeds = {layer.hash_seeds[r] for layer in self.layers}  # one per replica (layers differ by their index)
        return tensors, {"format": "hashed-mlp", "hash_seed": seeds.pop(), "buckets": [l.bucket_counts[r] for l in self.layers]}
