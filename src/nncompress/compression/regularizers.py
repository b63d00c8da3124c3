"""Weight regularizers applied the authors' way: w <- w - lambda * eta * R'(w) / n at every step.

Adding lambda * R'(w) / n to the gradient before the optimizer step gives exactly that update with plain
SGD; the training step (training/step.py) does so for the weights, never the biases.
"""
import torch


class Regularizer:
    """Adds `strength * R'(w)` to the gradient of a weight."""

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


REGULARIZERS = {"l1": L1, "l2": L2}


def build_regularizer(name: str, lam: float, n_train: int) -> Regularizer | None:
    """`name` in none | l1 | l2; the strength is lambda / n with n the training-set size."""
    return None if name == "none" or lam == 0 else REGULARIZERS[name](lam / n_train)
