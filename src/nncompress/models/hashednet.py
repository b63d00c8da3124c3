"""HashedNet (Chen et al., ICML 2015): each layer's virtual weights share K real values chosen by a hash.

V_ij = xi(i, j) * w[h(i, j)], with h a hash of (layer, i, j) into [0, K) and xi a second hash into {-1, +1}.
The hashes are computed, not stored: a compact model is its buckets plus its hash seed, and the same seed
gives the same buckets on every machine (64-bit integer mixing, no platform RNG).
"""
import math
from dataclasses import dataclass
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
        owner = torch.arange(len(ratios)).repeat_interleave(torch.tensor(self.bucket_counts))
        self.register_buffer("owner", owner, persistent=False)  # each bucket's replica: a gather lays out (R,) values

    def effective_weight(self) -> torch.Tensor:
        # Autograd through the gather sums the virtual weights' gradients into each bucket, as Chen et al. train it.
        return self.buckets[self.index] * self.sign

    @property
    def stored(self) -> nn.Parameter:
        return self.buckets

    def units(self) -> torch.Tensor:
        """Buckets per replica (R,): pruning removes buckets, never single virtual weights."""
        return torch.tensor(self.bucket_counts)

    def present(self) -> torch.Tensor:
        """(R, K_max) bool: which slots of the padded per-replica layout (`replica_units`) hold one of its buckets."""
        counts = self.units().to(self.bias.device)
        return torch.arange(int(counts.max()), device=counts.device) < counts.unsqueeze(1)

    def replica_units(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """`t` (default the buckets), in the buckets' layout (replica after replica), per replica: (R, 1, K_max),
        replica r's K_r buckets first, then zeros (the replicas of a population may have as many buckets each as
        their ratios say)."""
        t = self.buckets if t is None else t
        present = self.present()
        out = t.new_zeros(present.shape)
        out[present] = t
        return out.unsqueeze(1)

    def put_units_(self, t: torch.Tensor, index: torch.Tensor, values) -> None:
        present = self.present()
        starts = torch.cumsum(self.units(), 0).to(present.device) - self.units().to(present.device)
        positions = starts.unsqueeze(1) + torch.arange(present.shape[1], device=present.device)
        index = index.to(present.device)
        where = present[index]
        t[positions[index][where]] = values if not torch.is_tensor(values) else values.squeeze(1)[where].to(t.dtype)

    def replicated(self, t: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        return t.reshape(-1)[self.owner]  # a gather: a CUDA graph records it (a learning rate per replica, `lth`)

    def replica_mask(self) -> torch.Tensor:
        """Per-replica kept buckets (R, 1, K_max), as `replica_units` lays them out: False in the padding."""
        return self.present().unsqueeze(1) if self.mask is None else self.replica_units(self.mask)

    @torch.no_grad()
    def set_replica_mask_(self, mask: torch.Tensor) -> None:
        """Store the kept buckets (R, 1, K_max, as `replica_mask`) in the buckets' layout and zero those it removes:
        a pruned bucket is zero in every virtual weight it feeds."""
        self.mask = mask.squeeze(1)[self.present()]
        self.buckets.mul_(self.mask)

    def real_weights(self) -> torch.Tensor:
        """Buckets per replica (R,): the real weights behind the virtual ones; once pruned, the non-zero ones."""
        if self.mask is None:
            return torch.tensor(self.bucket_counts)
        return (self.replica_units() != 0).sum((1, 2)).cpu()

    def tied(self, index: torch.Tensor) -> "TiedWeights":
        """How replicas `index` tie their virtual weights to their buckets."""
        index = index.to(self.bias.device)
        starts = torch.cumsum(self.units(), 0) - self.units()
        local = self.per_replica(self.index)[index] - starts.to(index.device)[index].view(-1, 1, 1)
        return TiedWeights(local, self.replica_units()[index], self.units()[index.cpu()])

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


@dataclass
class TiedWeights:
    """One hashed layer's buckets for some replicas, as pruning ranks them: `values` (R', 1, K_max) padded as
    `HashedPopulationLinear.replica_units`, `index` (R', in, out) the bucket of each virtual weight, `counts` (R',)
    the buckets of each replica."""

    index: torch.Tensor
    values: torch.Tensor
    counts: torch.Tensor

    def sum(self, scores: torch.Tensor) -> torch.Tensor:
        """Per bucket (R', 1, K_max), the sum of the `scores` (R', in, out) of the virtual weights it feeds (0 for a
        bucket that feeds none)."""
        out = torch.zeros(self.values.shape[0], self.values.shape[2], dtype=scores.dtype, device=scores.device)
        return out.scatter_add_(1, self.index.flatten(1), scores.flatten(1)).unsqueeze(1)

    def padded(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """One score per bucket, a row (K_r,) per replica, in the padded layout (R', 1, K_max)."""
        out = self.values.new_zeros(self.values.shape)
        for r, row in enumerate(rows):
            out[r, 0, : len(row)] = row
        return out


class HashedPopulationMLP(PopulationMLP):
    """The MLP with hashed layers: replica r has ratio `ratios[r]` and hash seed `hash_seeds[r]`."""

    compactable = False  # its subset is a dense MLP: nothing a training step could write back into buckets

    def __init__(self, streams: int, per_stream: int, sizes: list[int], activation: str, ratios: list[float],
                 hash_seeds: list[int]):  # fmt: skip
        super().__init__(streams, per_stream, sizes, activation, partial(HashedPopulationLinear, ratios=ratios, hash_seeds=hash_seeds))

    def subset(self, index: torch.Tensor) -> PopulationMLP:
        """Replicas `index` as a dense MLP of their virtual weights, always a copy: what pruning's criteria score
        (their saliencies of virtual weights, summed per bucket: `TiedWeights`) and its trigger measures."""
        return self.dense(index)

    def tied_weights(self, index: torch.Tensor) -> list[TiedWeights]:
        return [layer.tied(index) for layer in self.layers]

    @torch.no_grad()
    def artefact(self, r: int, dense: bool = False, values: torch.dtype = torch.float32) -> tuple[dict, dict]:
        """`hashed-mlp`: the buckets, the hash seed and each layer's bucket count (the virtual weights are rebuilt
        from them)."""
        tensors = {f"layers.{i}.bias": layer.replica_bias()[r] for i, layer in enumerate(self.layers)}
        for i, layer in enumerate(self.layers):
            tensors[f"layers.{i}.buckets"] = layer.buckets.split(layer.bucket_counts)[r]
        seeds = {layer.hash_seeds[r] for layer in self.layers}  # one per replica (layers differ by their index)
        return tensors, {"format": "hashed-mlp", "hash_seed": seeds.pop(), "buckets": [l.bucket_counts[r] for l in self.layers]}
