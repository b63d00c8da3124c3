"""Saliencies: one score per weight and replica, lowest pruned first. Computed apart from masks and schedules.

A new criterion is a class with `scores(model, batches, loss)` and a `conf/method/<name>.yaml` naming it as
`saliency._target_`.
"""
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from ..typed import Typed
from .hessian import hessian_diagonal


@dataclass
class Magnitude(Typed):
    """|w| (magnitude pruning)."""

    def scores(self, model, batches, loss: str) -> list[torch.Tensor]:
        return [layer.replica_weight().abs() for layer in model.layers]


@dataclass
class OBD(Typed):
    """Optimal Brain Damage (LeCun et al. 1989): w^2 times the diagonal Hessian of the training loss.

    `hessian`: `abs` ranks by w^2 |H_kk| (the authors' code), `exact` by 1/2 H_kk w^2 (LeCun's saliency, can be
    negative where the loss is locally concave), `gauss_newton` by 1/2 G_kk w^2 with the Gauss-Newton diagonal.
    """

    node: ClassVar[str] = "method.saliency"
    hessian: Literal["abs", "exact", "gauss_newton"] = "abs"

    def scores(self, model, batches, loss: str) -> list[torch.Tensor]:
        """`batches`: the training set as data.module.EvalBatches; `loss`: the training loss's name."""
        diag = hessian_diagonal(model, batches, loss, gauss_newton=self.hessian == "gauss_newton")
        out = []
        for layer, h in zip(model.layers, diag):
            w2 = layer.replica_weight() ** 2
            out.append(w2 * h.abs() if self.hessian == "abs" else 0.5 * w2 * h)
        return out
