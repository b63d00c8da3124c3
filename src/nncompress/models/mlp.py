"""A population of multi-layer perceptrons (the paper's 784-H-10 networks)."""
import torch
from torch import nn

from .base import PopulationModel
from .functions import ACTIVATIONS
from .layers import PopulationLinear
from .measures import measured


def dense_layer(streams: int, per_stream: int, in_features: int, out_features: int, index: int) -> PopulationLinear:
    return PopulationLinear(streams, per_stream, in_features, out_features)


class PopulationMLP(PopulationModel):
    """R replicas of in -> hidden -> out; returns output pre-activations (R, B, out)."""

    compactable = True

    def __init__(self, streams: int, per_stream: int, sizes: list[int], activation: str, layer=dense_layer):
        """`layer(streams, per_stream, in, out, index)` builds layer `index` (dense by default)."""
        super().__init__(streams, per_stream)
        replicas = streams * per_stream
        # Only the first layer reads the (per-stream) input; later layers read per-replica activations.
        self.layers = nn.ModuleList(
            [layer(streams, per_stream, sizes[0], sizes[1], 0)]
            + [layer(replicas, 1, a, b, i + 1) for i, (a, b) in enumerate(zip(sizes[1:-1], sizes[2:]))]
        )
        self.activation_name, self.activation = activation, ACTIVATIONS[activation].forward

    def init_(self, generators: list[torch.Generator], scheme: str) -> None:
        """Initialise layer by layer from one generator per stream (replicas of a stream get equal weights)."""
        for layer in self.layers:
            layer.init_(generators, scheme)

    @torch.no_grad()
    def subset(self, index: torch.Tensor) -> "PopulationMLP":
        """Replicas `index` (R',) as a population of their own, one stream each, their (masked) weights copied:
        work done for a few replicas between epochs (saliencies, trigger accuracies) then costs what they cost,
        not what the whole population does. Replica k of it reads input stream `input_streams(index)[k]`."""
        return self if len(index) == self.replicas else self.dense(index)

    @torch.no_grad()
    def dense(self, index: torch.Tensor) -> "PopulationMLP":
        """A copy of replicas `index` as a dense population of their own, one stream each (`subset`)."""
        sub = PopulationMLP(len(index), 1, self.sizes(), self.activation_name).to(self.layers[0].bias.device)
        index = index.to(self.layers[0].bias.device)
        for mine, theirs in zip(sub.layers, self.layers):
            mine.weight.copy_(theirs.replica_weight()[index])
            mine.bias.copy_(theirs.replica_bias()[index].unsqueeze(1))
        return sub

    def sizes(self) -> list[int]:
        """The width of each layer's input, then of the output."""
        return [self.layers[0].in_features] + [layer.out_features for layer in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    @torch.no_grad()
    def replica_counts(self) -> list[dict]:
        """Per replica: non-zero (virtual) weights, real weights stored, total weights, biases, parameters, and the
        measures (`measures.measured`): each layer's multiply-adds, against the unpruned (virtual) network's."""
        nonzero = sum((layer.replica_weight() != 0).sum((1, 2)) for layer in self.layers).tolist()
        real = sum(layer.real_weights().cpu() for layer in self.layers).tolist()
        flops = sum(layer.multiplies().cpu() for layer in self.layers).tolist()
        total = sum(layer.in_features * layer.out_features for layer in self.layers)
        biases = sum(layer.out_features for layer in self.layers)
        return [
            {"nonzero_weights": n, "real_weights": w, "total_weights": total, "biases": biases,
             "parameters": w + biases, "achieved_ratio": w / total, **measured(f, total, w + biases, total + biases)}
            for n, w, f in zip(nonzero, real, flops)
        ]  # fmt: skip

    @torch.no_grad()
    def artefact(self, r: int, dense: bool = False, values: torch.dtype = torch.float32) -> tuple[dict, dict]:
        """`dense-mlp`, or `csr-mlp` for a pruned replica unless `dense` or its indices would cost more than the
        zeros they skip (a ratio near 1)."""
        biases = {f"layers.{i}.bias": layer.replica_bias()[r] for i, layer in enumerate(self.layers)}
        weights = [layer.replica_weight()[r].t() for layer in self.layers]
        sparse = {}
        for i, w in enumerate(weights):
            csr = w.to_sparse_csr()  # keeps the non-zero weights: exactly those the record counts
            sparse |= {f"layers.{i}.values": csr.values().to(values), f"layers.{i}.col_indices": narrowest_int(csr.col_indices()),
                       f"layers.{i}.crow_indices": narrowest_int(csr.crow_indices())}  # fmt: skip
        if dense or all(layer.mask is None for layer in self.layers) or nbytes(sparse) >= nbytes(weights):
            return biases | {f"layers.{i}.weight": w for i, w in enumerate(weights)}, {"format": "dense-mlp"}
        return biases | sparse, {"format": "csr-mlp", "nonzero": [int((w != 0).sum()) for w in weights]}

    def architecture(self) -> dict:
        return {"sizes": self.sizes(), "activation": self.activation_name}


def nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in (tensors.values() if isinstance(tensors, dict) else tensors))


def narrowest_int(t: torch.Tensor) -> torch.Tensor:
    """Non-negative indices in uint8, int16 or int32, whichever is the narrowest that holds their maximum."""
    top = int(t.max()) if t.numel() else 0
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if top <= torch.iinfo(dtype).max:
            return t.to(dtype)
    return t.to(torch.int64)
