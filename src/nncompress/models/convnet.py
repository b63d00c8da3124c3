"""The paper's small ConvNet (section 4.1), as a population: conv -> ReLU -> max-pool -> dropout -> linear.

Replicas run as one grouped convolution (one group per replica) and a batched linear head.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..data.catalog import IMAGES
from ..errors import UserError
from .base import PopulationModel
from .layers import PopulationLinear, StreamDropout, draw_weights
from .measures import measured


def conv_side(side: int, kernel: int, stride: int) -> int:
    """Side of the conv's output, the positions along a side where its kernel is applied: floor((side - kernel) /
    stride) + 1."""
    return (side - kernel) // stride + 1


def conv_output_side(side: int, kernel: int, stride: int, pool: int) -> int:
    """Side of the pooled feature map: `conv_side`, then floor(/ pool)."""
    return conv_side(side, kernel, stride) // pool


def feature_side(side: int, kernel: int, stride: int, pool: int) -> int:
    """`conv_output_side`, a one-line UserError when it leaves no feature map (the config's, an artefact's, a model's
    check)."""
    out_side = conv_output_side(side, kernel, stride, pool)
    if out_side < 1:
        raise UserError(f"kernel {kernel}, stride {stride} and pool {pool} leave no feature map of a {side}-pixel image")
    return out_side


def convnet_parameters(kernel: int, channels: int, stride: int, pool: int, side: int = IMAGES.side,
                       classes: int = IMAGES.classes) -> int:  # fmt: skip
    """Exact count: conv weights + conv biases + linear weights + linear biases."""
    features = channels * conv_output_side(side, kernel, stride, pool) ** 2
    return channels * kernel * kernel + channels + features * classes + classes


def convnet_flops(kernel: int, channels: int, stride: int, pool: int, side: int = IMAGES.side,
                  classes: int = IMAGES.classes) -> int:  # fmt: skip
    """Multiply-adds of one image through the dense ConvNet: each conv weight at every position of the conv's output
    (before pooling), each linear weight once."""
    features = channels * conv_output_side(side, kernel, stride, pool) ** 2
    return channels * kernel * kernel * conv_side(side, kernel, stride) ** 2 + features * classes


class PopulationConvNet(PopulationModel):
    def __init__(self, streams: int, per_stream: int, kernel: int, channels: int, stride: int, pool: int,
                 dropout: float, side: int = IMAGES.side, classes: int = IMAGES.classes, dropout_seeds=()):  # fmt: skip
        """`dropout_seeds`: one per stream, for its dropout masks (see `StreamDropout`)."""
        super().__init__(streams, per_stream)
        self.side = side
        self.kernel, self.channels, self.stride, self.pool = kernel, channels, stride, pool
        R = streams * per_stream
        out_side = feature_side(side, kernel, stride, pool)
        self.conv = nn.Conv2d(R, R * channels, kernel, stride=stride, groups=R)
        self.dropout = StreamDropout(dropout, dropout_seeds, per_stream)
        self.head = PopulationLinear(R, 1, channels * out_side * out_side, classes)
        self.layers = [self.head]  # the part with per-replica weight matrices

    @torch.no_grad()
    def init_(self, generators: list[torch.Generator], scheme: str = "uniform") -> None:
        """PyTorch's default init, one draw per stream: a replica's weights depend on its seed alone, and the
        replicas of one stream start alike (common random numbers)."""
        fan_in, P = self.kernel * self.kernel, self.per_stream
        w = self.conv.weight.view(self.replicas, self.channels, self.kernel, self.kernel)
        b = self.conv.bias.view(self.replicas, self.channels)
        for i, g in enumerate(generators):
            w[i * P : (i + 1) * P] = draw_weights(scheme, w.shape[1:], fan_in, g)
            b[i * P : (i + 1) * P] = draw_weights(scheme, b.shape[1:], fan_in, g)
        self.head.init_(generators, scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (G, B, side*side) per stream or (B, side*side) shared; returns logits (R, B, classes)."""
        s, R = self.side, self.replicas
        if x.dim() == 2:
            images = x.view(-1, 1, s, s).expand(-1, R, s, s)
        else:
            images = x.view(self.streams, -1, s, s).transpose(0, 1).repeat_interleave(self.per_stream, dim=1)
        h = F.max_pool2d(F.relu(self.conv(images)), self.pool)
        h = self.dropout(h.view(h.shape[0], R, -1)).transpose(0, 1)
        return self.head(h)

    def parameter_count(self) -> int:
        return convnet_parameters(self.kernel, self.channels, self.stride, self.pool, self.side, self.head.out_features)

    @torch.no_grad()
    def replica_counts(self) -> list[dict]:
        """Per replica: non-zero weights, total weights, biases, parameters (all stored: it is never pruned), and the
        measures (`measures.measured`): a conv weight is multiplied at every position of the conv's output, a zero
        one nowhere."""
        conv = self.channels * self.kernel * self.kernel
        total = conv + self.head.in_features * self.head.out_features
        conv_nonzero = (self.conv.weight.view(self.replicas, -1) != 0).sum(1).cpu()
        nonzero = (conv_nonzero + self.head.real_weights().cpu()).tolist()
        positions = conv_side(self.side, self.kernel, self.stride) ** 2
        flops = (conv_nonzero * positions + self.head.multiplies().cpu()).tolist()
        dense_flops = convnet_flops(self.kernel, self.channels, self.stride, self.pool, self.side,
                                    self.head.out_features)  # fmt: skip
        biases, parameters = self.channels + self.head.out_features, self.parameter_count()
        return [
            {"nonzero_weights": n, "real_weights": total, "total_weights": total, "biases": biases,
             "parameters": parameters, **measured(f, dense_flops, parameters, parameters)}
            for n, f in zip(nonzero, flops)
        ]  # fmt: skip

    @torch.no_grad()
    def artefact(self, r: int, dense: bool = False, values: torch.dtype = torch.float32) -> tuple[dict, dict]:
        """`convnet`: its conv filters and linear head, dense."""
        c = self.channels
        tensors = {"conv.weight": self.conv.weight[r * c : (r + 1) * c], "conv.bias": self.conv.bias[r * c : (r + 1) * c],
                   "head.weight": self.head.replica_weight()[r].t(), "head.bias": self.head.replica_bias()[r]}  # fmt: skip
        return tensors, {"format": "convnet"}

    def architecture(self) -> dict:
        return {"kernel": self.kernel, "channels": self.channels, "stride": self.stride, "pool": self.pool,
                "side": self.side, "classes": self.head.out_features}  # fmt: skip
