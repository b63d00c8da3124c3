"""Weight regularizers applied the authors' way: w <- w - lambda * eta * R'(w) / n at every step.

Adding lambda * R'(w) / n to the gradient before the optimizer step gives exactly that update with plain
SGD; the training step (training/step.py) does so for the weights, never the biases.
"""
import torch


class Regularizer:
    """Adds `strength * R'(w)` to the gradient of a weight. A method's `regularizer` node names the class
    (`_partial_`); the training sets the strength: lambda / n, n the training-set size."""

    def __init__(self, strength: float):
        self.strength = strength

    def derivative(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def add_to(self, grad: torch.Tensor, w: torch.Tensor) -> None:
        grad.add_(self.derivative(w), alpha=self.strength)


class L2(Regularizer):
    def derivative(self, w):
        return w


class L1(Regularizer):
    def derivative(self, w):
        return w.sign()
