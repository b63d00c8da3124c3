"""Iterative magnitude pruning with rewinding: the lottery ticket hypothesis (Frankle & Carbin 2019), with late
rewinding (Frankle et al. 2020, "Linear mode connectivity and the lottery ticket hypothesis")."""
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..errors import UserError
from ..typed import LONG_RUN, MAX_EPOCHS, bounded
from .saliency import Magnitude


@dataclass
class LotteryTicket(Magnitude):
    """Magnitude scores; after each of a replica's steps its surviving weights, and its biases, return to their
    values at the start of epoch `rewind_epoch` (0: the initialisation) and its training restarts from there: its
    learning rate from that epoch's place in the schedule, its momentum from zero. OpenLTH does the same: each round
    a new optimizer, its schedule fast-forwarded to the rewind step (lottery/runner.py, training/train.py).

    The weights to rewind to are taken for every replica at the start of `rewind_epoch`, before any step (so it may
    not come after `pruning.timing.first_epoch`), and kept in the criterion's state (a checkpoint's part)."""

    node: ClassVar[str] = "method.saliency"
    restarts: ClassVar[bool] = True
    rewind_epoch: int = bounded(0, low=0, high=MAX_EPOCHS, why=LONG_RUN)
    rewind_to: list | None = field(default=None, init=False, repr=False)  # replica_parameters of all, on the CPU

    def check_timing(self, timing) -> None:
        if self.rewind_epoch > timing.first_epoch:
            raise UserError(f"method.saliency.rewind_epoch must be at most pruning.timing.first_epoch "
                            f"({timing.first_epoch}): the weights to rewind to are taken before the first step, got "
                            f"{self.rewind_epoch}")  # fmt: skip

    def start_epoch(self, host, epoch: int) -> None:
        if epoch == self.rewind_epoch:
            everyone = torch.arange(host.model.replicas)
            self.rewind_to = [t.cpu() for t in host.replica_parameters(everyone)]

    def after_step(self, host, index: torch.Tensor) -> None:
        host.rewind(index, [t[index.cpu()] for t in self.rewind_to])
        host.restart_schedule(index, self.rewind_epoch)

    def state_dict(self) -> dict:
        return {"rewind_to": self.rewind_to}

    def load_state_dict(self, state: dict) -> None:
        self.rewind_to = state["rewind_to"]
