"""Saliencies: one score per weight and replica, lowest pruned first. Computed apart from masks and schedules.

A new criterion is a subclass of `Criterion` and a `conf/method/<name>.yaml` naming it as `saliency._target_`.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

from ..errors import UserError
from ..population import Population
from ..typed import Typed
from .gradient import loss_gradient
from .hessian import hessian_diagonal
from .layerwise import dampened, input_hessians, inverse, InputHessians, refit


class Criterion(ABC):
    """What a pruning step asks of a method's `saliency`: `scores` to rank the weights by, then `regrow`, a seam for
    dynamic sparsity (weights brought back after the step pruned), which by default brings none back, then
    `compensate`, new values for the weights kept (OBS), which by default leaves them as they are.

    Each gets `model`, the replicas being pruned as a population of their own (R of them: the population's `replicas`,
    in order), `batches`, the training set they read (data.module.EvalBatches), and `loss`, the training loss's name.

    A criterion that moves the replicas it prunes (rewinding: `LotteryTicket`) does so through the population in
    training (host.PruningHost) in `start_epoch` and `after_step`, which by default do nothing; one that restarts their
    learning-rate schedules (`PruningHost.restart_schedule`) says so in `restarts`, so that the training step keeps a
    schedule position per replica from the start.
    """

    # Reads each layer's inputs and rewrites its weights: only for a family whose spec says `linear_layers`
    # (config.check_family refuses the others before training).
    layer_wise: ClassVar[bool] = False
    restarts: ClassVar[bool] = False

    @abstractmethod
    def scores(self, model, batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        """Per layer, a score (R, in, out) per weight: the lowest are pruned first."""

    def tied(self, scores: list[torch.Tensor], tied: list, replicas: list[int]) -> list[torch.Tensor]:
        """Per layer, a score per stored value where several weights share one (a HashedNet's buckets: `tied`, per
        layer a `models.hashednet.TiedWeights`), from `scores`, those of the weights (the virtual ones): by default
        their sum over the weights each value feeds. A saliency estimates the loss's rise when its weight is removed,
        and removing a bucket removes every virtual weight it feeds at once; OBD's diagonal approximation (and SNIP's
        first-order one) drops the cross terms between weights, so under it their rises add up."""
        return [t.sum(s) for t, s in zip(tied, scores)]

    def start(self, population: Population) -> None:
        """Once, before any step: the population it prunes (`replicas` index `population.replicas`), for a criterion
        that draws at random from each replica's own seed (`population.replica_seeds`)."""

    def regrow(self, model, masks: list[torch.Tensor], batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        """The step's masks (R, in, out) per layer, pruned to its fraction, with the weights it brings back kept: one
        brought back restarts at zero. `model`'s weights are still those before the step."""
        return masks

    def compensate(self, model, masks: list[torch.Tensor], batches, loss: str, replicas: list[int]):
        """New weights (R, in, out) per layer for the step's final `masks` (after `regrow`), zero where they prune, or
        None: the weights kept stay as they are. `model`'s weights are still those before the step."""
        return None

    def check_timing(self, timing) -> None:
        """Refuse, as a one-line UserError, a pruning timing (schedules.Timing) the criterion cannot follow."""

    def start_epoch(self, host, epoch: int) -> None:
        """At the start of every epoch, before its steps: `host` is the population in training (host.PruningHost)."""

    def after_step(self, host, index: torch.Tensor) -> None:
        """Right after a step has set the masks of replicas `index` (the population's indices), before its training
        accuracy is measured."""

    def state_dict(self) -> dict:
        """What the criterion keeps from one step to the next, for a checkpoint (tensors, numbers, lists, dicts)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Back to where `state_dict` was taken."""


@dataclass
class Magnitude(Typed, Criterion):
    """|w| (magnitude pruning)."""

    def scores(self, model, batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        return [layer.replica_weight().abs() for layer in model.layers]

    def tied(self, scores: list[torch.Tensor], tied: list, replicas: list[int]) -> list[torch.Tensor]:
        """A bucket's |value|: the magnitude of the weight it stores (a sum would rank by how many it feeds)."""
        return [t.values.abs() for t in tied]


@dataclass
class OBD(Typed, Criterion):
    """Optimal Brain Damage (LeCun et al. 1989): w^2 times the diagonal Hessian of the training loss.

    `hessian`: `abs` ranks by w^2 |H_kk| (the authors' code), `exact` by 1/2 H_kk w^2 (LeCun's saliency, can be
    negative where the loss is locally concave), `gauss_newton` by 1/2 G_kk w^2 with the Gauss-Newton diagonal.
    `hessian_at`: `each_step` computes the diagonal at every pruning step on the replica as it is then (the
    authors' code); `first_step` computes it once, at the replica's first step, and ranks later steps by today's
    weights with that diagonal.
    """

    node: ClassVar[str] = "method.saliency"
    hessian: Literal["abs", "exact", "gauss_newton"] = "abs"
    hessian_at: Literal["each_step", "first_step"] = "each_step"
    kept: dict = field(default_factory=dict, init=False, repr=False)  # replica -> its diagonal (`first_step`)

    def scores(self, model, batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        if self.hessian_at == "each_step" or any(r not in self.kept for r in replicas):
            diag = hessian_diagonal(model, batches, loss, gauss_newton=self.hessian == "gauss_newton")
            if self.hessian_at == "each_step":
                return self.weigh(model, diag)
            for k, r in enumerate(replicas):
                self.kept.setdefault(r, [h[k] for h in diag])
        return self.weigh(model, [torch.stack([self.kept[r][i] for r in replicas]) for i in range(len(model.layers))])

    def state_dict(self) -> dict:
        return {"kept": self.kept}

    def load_state_dict(self, state: dict) -> None:
        self.kept = dict(state["kept"])

    def weigh(self, model, diag: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for layer, h in zip(model.layers, diag):
            w2 = layer.replica_weight() ** 2
            out.append(w2 * h.abs() if self.hessian == "abs" else 0.5 * w2 * h)
        return out


@dataclass
class OBS(Typed, Criterion):
    """Optimal Brain Surgeon on the layer-wise Hessian H = XᵀX / n of each layer's inputs over the training set
    (L-OBS, OBC, SparseGPT; compression/layerwise.py), dampened by `damp` × mean(diag H): a weight w_qj scores
    w_qj² / [H⁻¹]_qq, what removing it alone from the dense layer costs its unit's outputs, and once the step's masks
    are chosen every unit's kept weights move to make up for its pruned ones, exactly (the closed form per unit).

    H is measured on the model before the step, every layer at once (not layer after pruned layer, as OBC and
    SparseGPT do), once per step: `scores` keeps it for the same step's `compensate`.
    """

    node: ClassVar[str] = "method.saliency"
    layer_wise: ClassVar[bool] = True
    damp: float = 0.01
    measured: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # model -> its step's H

    def check(self) -> None:
        if self.damp <= 0:
            raise UserError(f"method.saliency.damp must be above 0 (H is singular where an input is always 0), "
                            f"got {self.damp}")

    def hessians(self, model, batches) -> list[tuple[InputHessians, InputHessians]]:
        """Per layer, the dampened H and its inverse."""
        out = []
        for h in input_hessians(model, batches):
            h = InputHessians(dampened(h.h, self.damp), h.group)
            out.append((h, InputHessians(inverse(h.h), h.group)))
        return out

    @torch.no_grad()
    def scores(self, model, batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        self.measured = {model: self.hessians(model, batches)}
        out = []
        for layer, (_, h_inv) in zip(model.layers, self.measured[model]):
            diag = h_inv.h.diagonal(dim1=1, dim2=2)[h_inv.group]  # (R, in): [H⁻¹]_qq, the same for every unit
            out.append(layer.replica_weight().double() ** 2 / diag.unsqueeze(2))
        return out

    @torch.no_grad()
    def compensate(self, model, masks: list[torch.Tensor], batches, loss: str, replicas: list[int]):
        measured = self.measured.pop(model, None) or self.hessians(model, batches)
        return [refit(h, h_inv, layer.replica_weight(), keep)
                for layer, (h, h_inv), keep in zip(model.layers, measured, masks)]  # fmt: skip


@dataclass
class Random(Typed, Criterion):
    """Random scores, the control a criterion must beat: a fixed random order of each replica's weights, drawn anew
    at every step from the replica's own seed (its stream's: the replicas of one seed share it under common random
    numbers), so that it prunes alike alone or in a population, and after a resume, with no state to keep. Each
    step then removes a uniformly random subset of the weights left, as fresh draws would."""

    node: ClassVar[str] = "method.saliency"
    seeds: list = field(default_factory=list, init=False, repr=False)  # per replica of the population (`start`)

    def start(self, population: Population) -> None:
        self.seeds = population.replica_seeds("pruning")

    def scores(self, model, batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        draws = [torch.Generator().manual_seed(self.seeds[r]) for r in replicas]
        device = model.layers[0].bias.device
        return [torch.stack([torch.rand(layer.in_features, layer.out_features, generator=g) for g in draws]).to(device)
                for layer in model.layers]  # fmt: skip

    def tied(self, scores: list[torch.Tensor], tied: list, replicas: list[int]) -> list[torch.Tensor]:
        """A random order of the buckets themselves, drawn as `scores` draws, one per bucket: summed draws would
        keep the buckets feeding the most virtual weights (a criterion, not the control)."""
        draws = [torch.Generator().manual_seed(self.seeds[r]) for r in replicas]
        return [t.padded([torch.rand(int(k), generator=g) for k, g in zip(t.counts, draws)]) for t in tied]


@dataclass
class SNIP(Typed, Criterion):
    """Connection sensitivity (Lee et al. 2019): |dL/dw * w|, the loss's derivative in a multiplicative gate on the
    weight, L the training loss averaged over the whole training set (the paper: one batch of 100; their ranking
    normalises by the sum over all weights, which changes no order). Meant for once, at initialisation
    (`pruning=at_init`, `schedule=oneshot`, as `method=snip` picks them)."""

    node: ClassVar[str] = "method.saliency"

    def scores(self, model, batches, loss: str, replicas: list[int]) -> list[torch.Tensor]:
        grads = loss_gradient(model, batches, loss)
        return [(g * layer.replica_weight()).abs() for g, layer in zip(grads, model.layers)]
