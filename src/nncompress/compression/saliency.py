"""Saliencies: one score per weight and replica, lowest pruned first. Computed apart from masks and schedules."""
import torch

from .hessian import hessian_diagonal


class Magnitude:
    """|w| (magnitude pruning)."""

    def scores(self, model, batches) -> list[torch.Tensor]:
        return [layer.replica_weight().abs() for layer in model.layers]


class OBD:
    """Optimal Brain Damage (LeCun et al. 1989): w^2 times the diagonal Hessian of the training loss.

    `hessian`: `abs` ranks by w^2 |H_kk| (the authors' code), `exact` by 1/2 H_kk w^2 (LeCun's saliency, can be
    negative where the loss is locally concave), `gauss_newton` by 1/2 G_kk w^2 with the Gauss-Newton diagonal.
    """

    def __init__(self, loss: str, hessian: str = "abs"):
        if hessian not in ("abs", "exact", "gauss_newton"):
            raise ValueError(hessian)
        self.loss, self.hessian = loss, hessian

    def scores(self, model, batches) -> list[torch.Tensor]:
        """`batches`: the training set as data.module.EvalBatches."""
        diag = hessian_diagonal(model, batches, self.loss, gauss_newton=self.hessian == "gauss_newton")
        out = []
        for layer, h in zip(model.layers, diag):
            w2 = layer.replica_weight() ** 2
            out.append(w2 * h.abs() if self.hessian == "abs" else 0.5 * w2 * h)
        return out


SALIENCIES = {"magnitude": Magnitude, "obd": OBD}
