"""The activations and losses a protocol names (`protocol.activation`, `protocol.loss`): one table per kind, each
name with its function and the derivatives OBD's Hessian diagonal (compression/hessian.py) needs of it, so that a
name means the same function wherever it is read."""
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


class Activation(NamedTuple):
    forward: Callable[[torch.Tensor], torch.Tensor]
    derivatives: Callable  # (z, a) -> (f'(z), f''(z)) given a = f(z)


def sigmoid_derivatives(z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d1 = a * (1 - a)
    return d1, d1 * (1 - 2 * a)


def relu_derivatives(z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (z > 0).to(z.dtype), torch.zeros_like(z)


ACTIVATIONS = {"sigmoid": Activation(torch.sigmoid, sigmoid_derivatives), "relu": Activation(torch.relu, relu_derivatives)}


class Loss(NamedTuple):
    value: Callable  # (logits (R, B, C), targets (B,)) -> each replica's mean loss (R,)
    # (z (R, B, C), targets (R, B), gauss_newton) -> per sample dL/dz (R, B, C), diag(H_out) (R, B, C), and
    # w -> (w_j^T H_out w_j)_j for w (R, in, C), with H_out the Hessian of the loss in the outputs z
    output_terms: Callable


def mse_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The authors' cost: 1/2 ||sigmoid(z) - onehot(y)||^2 per sample, mean over samples, per replica (R,)."""
    a = torch.sigmoid(logits.float())  # float32 even under bf16 autocast
    onehot = F.one_hot(target, a.shape[-1]).to(a.dtype)
    return 0.5 * (a - onehot).pow(2).sum((1, 2)) / a.shape[1]


def mse_terms(z: torch.Tensor, y: torch.Tensor, gauss_newton: bool):
    """L = 1/2 ||sigmoid(z) - y||^2: outputs independent, H_out diagonal."""
    onehot = F.one_hot(y, z.shape[-1]).to(z.dtype)
    a = torch.sigmoid(z)
    d1 = a * (1 - a)
    h = d1 * d1 if gauss_newton else d1 * d1 + (a - onehot) * d1 * (1 - 2 * a)
    return (a - onehot) * d1, h, lambda w: h @ (w * w).transpose(1, 2)


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, mean over samples, per replica (R,)."""
    R, B, C = logits.shape
    return F.cross_entropy(logits.float().reshape(-1, C), target.expand(R, B).reshape(-1), reduction="none").view(R, B).mean(1)


def cross_entropy_terms(z: torch.Tensor, y: torch.Tensor, gauss_newton: bool):
    """H_out = diag(p) - p p^T, already positive semi-definite (the same with `gauss_newton`)."""
    onehot = F.one_hot(y, z.shape[-1]).to(z.dtype)
    p = torch.softmax(z, -1)
    return p - onehot, p * (1 - p), lambda w: p @ (w * w).transpose(1, 2) - (p @ w.transpose(1, 2)) ** 2


LOSSES = {"mse": Loss(mse_loss, mse_terms), "cross_entropy": Loss(cross_entropy_loss, cross_entropy_terms)}
