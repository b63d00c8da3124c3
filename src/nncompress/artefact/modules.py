"""Plain `torch.nn.Module`s that run an artefact: no Lightning, no Hydra, no population.

Each takes raw images (B, 784) in [0, 1] and returns the logits (B, 10), standardizing the input first when the
replica was trained on standardized data (the mean and std travel in the file). The MLPs hold their tensors in
tuples, not as registered parameters (a module's per-call overhead would cost more than a batch of one computes):
they run on the CPU they were loaded on, and `.to(device)` does not move them.
"""
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..models.hashednet import bucket_index, edge_sign
from ..models.functions import ACTIVATIONS

# CSR matmuls are what this module is for; the "beta" notice would print on every load.
warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")


class Standardize(nn.Module):
    """(x - mean) / std with the training set's float32 mean and std, as training computed it; none: identity."""

    def __init__(self, mean: torch.Tensor | None, std: torch.Tensor | None):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mean is None else (x - self.mean) / self.std


class DenseMLP(nn.Module):
    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor], activation: str, standardize: Standardize):
        """weights[i]: (out, in), as `nn.Linear` holds them."""
        super().__init__()
        self.standardize, self.activation = standardize, ACTIVATIONS[activation].forward
        # Plain tensors, not ParameterLists: iterating those cost ~20 us a call, as much as a batch of one computes.
        self.layers = tuple(zip(weights, biases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.standardize(x)
        for w, b in self.layers[:-1]:
            x = self.activation(F.linear(x, w, b))
        return F.linear(x, *self.layers[-1])


class SparseMLP(nn.Module):
    """A pruned MLP, cut on load to the weights that count: the input pixels some weight reads and the hidden units
    the next layer reads (the others feed nothing), with the input standardization folded into the first layer.

    Small batches multiply dense copies of these (small) matrices, large ones multiply them as CSR (`torch.sparse`).
    """

    # A batch of one is all per-op overhead, and the CSR kernels carry more of it than a dense matmul; CSR's work, in
    # proportion to the non-zeros, wins from 32-48 rows at ratios 0.1 and 0.01 (one CPU thread; later when sparser).
    SMALL_BATCH = 32

    def __init__(self, dense: list[torch.Tensor], biases: list[torch.Tensor], activation: str, standardize: Standardize):
        """dense[i]: layer i's (out, in) weights, its pruned ones zero."""
        super().__init__()
        self.activation = ACTIVATIONS[activation].forward
        reads = [w.any(0).nonzero().squeeze(1) for w in dense]  # the inputs of each layer that some weight reads
        kept = reads[1:] + [torch.arange(len(dense[-1]))]  # each layer's outputs read by the next (the last: all)
        weights = [w[rows][:, cols] for w, rows, cols in zip(dense, kept, reads)]
        biases = [b[rows] for b, rows in zip(biases, kept)]
        if standardize.mean is not None:  # W (x - m) / s + b = (W / s) x + b - m (W / s) 1; m, s: scalars
            weights[0] = weights[0] / standardize.std
            biases[0] = biases[0] - weights[0].sum(1) * standardize.mean
        self.inputs = reads[0]
        self.dense = tuple(zip(weights, biases))
        self.csr = tuple((w.to_sparse_csr(), b.unsqueeze(1)) for w, b in self.dense)  # CSR tensors are not Parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) < self.SMALL_BATCH:
            h = x.index_select(1, self.inputs)
            for w, b in self.dense[:-1]:
                h = self.activation(F.linear(h, w, b))
            return F.linear(h, *self.dense[-1])
        # CSR @ dense, so computed transposed: h (features, B) = W h + b, gathered straight into the contiguous
        # (features, B) layout the CSR kernel reads fastest (a transposed view of a (B, features) gather is slower).
        h = x.t().index_select(0, self.inputs)
        for w, b in self.csr[:-1]:
            h = self.activation(torch.addmm(b, w, h))
        w, b = self.csr[-1]
        return torch.addmm(b, w, h).t()


def hashed_weight(buckets: torch.Tensor, seed: int, layer: int, shape) -> torch.Tensor:
    """The virtual (out, in) matrix of a HashedNet layer, from its buckets and hash seed (as training built it)."""
    out_features, in_features = shape
    n = in_features * out_features
    index = torch.from_numpy(bucket_index(seed, layer, n, len(buckets))).view(in_features, out_features)
    sign = torch.from_numpy(edge_sign(seed, layer, n)).view(in_features, out_features)
    return (buckets[index] * sign).t().contiguous()


class ConvNet(nn.Module):
    """conv -> ReLU -> max-pool -> linear (dropout is off at inference)."""

    def __init__(self, conv_weight, conv_bias, head_weight, head_bias, stride: int, pool: int, side: int,
                 standardize: Standardize):  # fmt: skip
        super().__init__()
        self.standardize, self.stride, self.pool, self.side = standardize, stride, pool, side
        self.conv_weight, self.conv_bias = (nn.Parameter(t, requires_grad=False) for t in (conv_weight, conv_bias))
        self.head_weight, self.head_bias = (nn.Parameter(t, requires_grad=False) for t in (head_weight, head_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = self.standardize(x).view(-1, 1, self.side, self.side)
        h = F.max_pool2d(F.relu(F.conv2d(images, self.conv_weight, self.conv_bias, self.stride)), self.pool)
        return F.linear(h.flatten(1), self.head_weight, self.head_bias)
