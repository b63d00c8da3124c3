"""A population of one-hidden-layer perceptrons (the paper's 784-H-10 networks)."""
import torch
from torch import nn

from .layers import PopulationLinear

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu}


def dense_layer(streams: int, per_stream: int, in_features: int, out_features: int, index: int) -> PopulationLinear:
    return PopulationLinear(streams, per_stream, in_features, out_features)


class PopulationMLP(nn.Module):
    """R replicas of in -> hidden -> out; returns output pre-activations (R, B, out)."""

    def __init__(self, streams: int, per_stream: int, sizes: list[int], activation: str, layer=dense_layer):
        """`layer(streams, per_stream, in, out, index)` builds layer `index` (dense by default)."""
        super().__init__()
        replicas = streams * per_stream
        # Only the first layer reads the (per-stream) input; later layers read per-replica activations.
        self.layers = nn.ModuleList(
            [layer(streams, per_stream, sizes[0], sizes[1], 0)]
            + [layer(replicas, 1, a, b, i + 1) for i, (a, b) in enumerate(zip(sizes[1:-1], sizes[2:]))]
        )
        self.activation_name, self.activation = activation, ACTIVATIONS[activation]

    @property
    def replicas(self) -> int:
        return self.layers[0].replicas

    def init_(self, generators: list[torch.Generator], scheme: str) -> None:
        """Initialise layer by layer from one generator per stream (replicas of a stream get equal weights)."""
        for layer in self.layers:
            layer.init_(generators, scheme)

    @torch.no_grad()
    def subset(self, index: torch.Tensor) -> "PopulationMLP":
        """Replicas `index` (R',) as a population of their own, one stream each, their (masked) weights copied:
        work done for a few replicas between epochs (saliencies, trigger accuracies) then costs what they cost,
        not what the whole population does. Replica k of it reads input stream `input_streams(index)[k]`."""
        if len(index) == self.replicas:
            return self
        sizes = [self.layers[0].in_features] + [layer.out_features for layer in self.layers]
        sub = PopulationMLP(len(index), 1, sizes, self.activation_name).to(self.layers[0].bias.device)
        index = index.to(self.layers[0].bias.device)
        for mine, theirs in zip(sub.layers, self.layers):
            mine.weight.copy_(theirs.replica_weight()[index])
            mine.bias.copy_(theirs.replica_bias()[index].unsqueeze(1))
        return sub

    def input_streams(self, index: torch.Tensor) -> torch.Tensor:
        """The input stream each replica of `index` reads."""
        return index // self.layers[0].per_stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    @torch.no_grad()
    def replica_counts(self) -> list[dict]:
        """Per replica: non-zero (virtual) weights, real weights stored, total weights, biases, parameters."""
        nonzero = sum((layer.replica_weight() != 0).sum((1, 2)) for layer in self.layers).tolist()
        real = sum(layer.real_weights().cpu() for layer in self.layers).tolist()
        total = sum(layer.in_features * layer.out_features for layer in self.layers)
        biases = sum(layer.out_features for layer in self.layers)
        return [
            {"nonzero_weights": n, "real_weights": w, "total_weights": total, "biases": biases,
             "parameters": w + biases, "achieved_ratio": w / total}
            for n, w in zip(nonzero, real)
        ]  # fmt: skip
