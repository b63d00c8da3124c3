"""What pruning needs from the training it runs in, as one interface: compression then never reaches into how a
population is trained (training/module.py implements it), and a test can prune a population without Lightning."""
from collections.abc import Iterable
from typing import Protocol

import torch
from torch import nn


class PruningHost(Protocol):
    """A population in training. Replicas are named by their indices in the population (`index`, long tensors)."""

    model: nn.Module  # the population: its `layers` and `subset(index)` (models/mlp.py)
    loss_name: str  # the training loss, which criteria such as OBD differentiate

    def eval_batches(self, split: str, index: torch.Tensor) -> Iterable:
        """The batches of `split` that `model.subset(index)` reads (data.module.EvalBatches)."""
        ...

    def subset_accuracy(self, split: str, index: torch.Tensor) -> torch.Tensor:
        """Accuracy (len(index),) on `split` of the replicas `index`, measured on them alone (on the CPU)."""
        ...

    def masks(self) -> list[torch.Tensor]:
        """Each layer's kept weights per replica (R, in, out), a copy the caller may change."""
        ...

    def set_masks(self, masks: list[torch.Tensor]) -> None:
        """From now on only the weights `masks` keep exist: the others are zeroed and never move, until a later call
        keeps them again (at zero)."""
        ...

    def set_weights(self, index: torch.Tensor, weights: list[torch.Tensor]) -> None:
        """Replicas `index`' weights from now on, (len(index), in, out) per layer, zero wherever their masks prune (a
        criterion's `compensate`)."""
        ...

    def train_only(self, active: torch.Tensor) -> None:
        """From now on only the replicas `active` (bool, R) train; the others never move again."""
        ...

    def replica_parameters(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Copies of replicas `index`' parameters: per layer its weights (len(index), in, out), then its biases
        (len(index), out)."""
        ...

    def rewind(self, index: torch.Tensor, parameters: list[torch.Tensor]) -> None:
        """Replicas `index`' parameters set to `parameters` (as `replica_parameters` gives them), the weights their
        masks remove left at zero."""
        ...

    def restart_schedule(self, index: torch.Tensor, epoch: int) -> None:
        """Replicas `index` train on as from the start of epoch `epoch`: their learning rate follows the schedule
        from there, their momentum starts from zero. Only for a criterion that says it restarts
        (`Criterion.restarts`): the training then keeps a schedule position per replica."""
        ...

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        """Hand `metrics` to the run's experiment logger, if it has one."""
        ...
