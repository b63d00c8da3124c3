"""Plain `torch.nn.Module`s that run an artefact: no Lightning, no Hydra, no population.

Each takes raw images (B, 784) in [0, 1] and returns the logits (B, 10), standardizing the input first when the
replica was trained on standardized data (the mean and std travel in the file).
"""
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..models.hashednet import bucket_index, edge_sign
from ..models.mlp import ACTIVATIONS

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
        self.standardize, self.activation = standardize, ACTIVATIONS[activation]
        self.weights = nn.ParameterList([nn.Parameter(w, requires_grad=False) for w in weights])
        self.biases = nn.ParameterList([nn.Parameter(b, requires_grad=False) for b in biases])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.standardize(x)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = F.linear(x, w, b)
            if i < len(self.weights) - 1:
                x = self.activation(x)
        return x


class SparseMLP(nn.Module):
    """A pruned MLP multiplying CSR matrices (`torch.sparse`), computed transposed: h (features, B) = W h + b.

    The first layer keeps only the input pixels some weight reads (`inputs`), gathered before standardizing: at
    high compression most pixels feed nothing, and reading the batch is then most of the work.
    """

    def __init__(self, matrices: list[torch.Tensor], biases: list[torch.Tensor], inputs: torch.Tensor, activation: str,
                 standardize: Standardize):  # fmt: skip
        super().__init__()
        self.standardize, self.activation = standardize, ACTIVATIONS[activation]
        self.matrices = matrices  # CSR tensors are not Parameters; kept as plain attributes
        self.register_buffer("inputs", inputs)
        self.biases = nn.ParameterList([nn.Parameter(b.unsqueeze(1), requires_grad=False) for b in biases])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.standardize(x.index_select(1, self.inputs)).t()
        for i, (w, b) in enumerate(zip(self.matrices, self.biases)):
            h = torch.addmm(b, w, h)
            if i < len(self.matrices) - 1:
                h = self.activation(h)
        return h.t()


def csr_without_unread_columns(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the CSR matrix over the columns some weight reads, those columns' indices)."""
    inputs, remapped = torch.unique(matrix.col_indices(), return_inverse=True)
    compact = torch.sparse_csr_tensor(matrix.crow_indices(), remapped, matrix.values(), (matrix.shape[0], len(inputs)),
                                     check_invariants=False)  # built from a checked matrix
    return compact, inputs


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
