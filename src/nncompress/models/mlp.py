"""A population of one-hidden-layer perceptrons (the paper's 784-H-10 networks)."""
import torch
from torch import nn

from .population import PopulationLinear

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu}


class PopulationMLP(nn.Module):
    """R replicas of in -> hidden -> out; returns output pre-activations (R, B, out)."""

    def __init__(self, streams: int, per_stream: int, sizes: list[int], activation: str):
        super().__init__()
        replicas = streams * per_stream
        # Only the first layer reads the (per-stream) input; later layers read per-replica activations.
        self.layers = nn.ModuleList(
            [PopulationLinear(streams, per_stream, sizes[0], sizes[1])]
            + [PopulationLinear(replicas, 1, a, b) for a, b in zip(sizes[1:-1], sizes[2:])]
        )
        self.activation_name, self.activation = activation, ACTIVATIONS[activation]

    @property
    def replicas(self) -> int:
        return self.layers[0].replicas

    def init_(self, generators: list[torch.Generator], scheme: str) -> None:
        """Initialise layer by layer from one generator per stream (replicas of a stream get equal weights)."""
        for layer in self.layers:
            layer.init_(generators, scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)
