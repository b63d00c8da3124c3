"""Pruning schedules: the removed fraction after step i of k, and when steps happen."""
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from ..typed import LONG_RUN, MAX_EPOCHS, Typed, bounded

FINAL_PHASES = {"fixed": None, "train_peak": "train", "test_peak": "test"}  # -> the split whose accuracy ends it


@dataclass
class PowerSchedule(Typed):
    """The paper's (section 3.2.1): S * (i / k)^(1 / c); large steps first, smaller ones as the net thins."""

    node: ClassVar[str] = "pruning.schedule"
    steps: int = bounded(15, low=1, high=MAX_EPOCHS, why=LONG_RUN)  # a step takes an epoch at least
    c: float = bounded(16.0, low=1e-9)

    def fraction(self, i: int, target: float) -> float:
        return target * (i / self.steps) ** (1.0 / self.c)


@dataclass
class CubicSchedule(Typed):
    """Zhu & Gupta (2018): S * (1 - (1 - i / k)^3)."""

    node: ClassVar[str] = "pruning.schedule"
    steps: int = bounded(15, low=1, high=MAX_EPOCHS, why=LONG_RUN)  # a step takes an epoch at least

    def fraction(self, i: int, target: float) -> float:
        return target * (1.0 - (1.0 - i / self.steps) ** 3)


@dataclass(frozen=True)
class Timing(Typed):
    """When steps fire: the first at `first_epoch`; then when the training accuracy reaches `threshold` (None:
    never early) or `every` epochs after the last step.

    Which training accuracy (`trigger_lag`): 0, the one measured at the start of the epoch the step fires in,
    after an epoch of training since the last step; 1, the one measured at the start of the epoch before, right
    after that epoch's step if it had one (the authors' loop measures before training an epoch and prunes after
    it, so a step right after another needs the network to have stood that step untrained).

    When training ends after the last step (`final`): `fixed`, `final_epochs` later (the authors' code: about 50, their loop gives 52);
    `train_peak` / `test_peak`, at the first epoch whose training / test accuracy (measured at its start) is no
    higher than the epoch before, i.e. just past a local maximum (the paper's text), `final_epochs` at the most.
    `test_peak` selects on the test set, which flatters the result: an ablation, not a protocol to report.
    """

    node: ClassVar[str] = "pruning.timing"
    first_epoch: int = bounded(4, low=0, high=MAX_EPOCHS, why=LONG_RUN)
    every: int = bounded(1, low=1, high=MAX_EPOCHS, why=LONG_RUN)
    threshold: float | None = bounded(None, low=0.0, high=1.0)
    trigger_lag: int = bounded(0, low=0, high=1)
    final_epochs: int = bounded(10, low=0, high=MAX_EPOCHS, why=LONG_RUN)
    final: Literal[tuple(FINAL_PHASES)] = "fixed"

    def max_epochs(self, steps: int) -> int:
        return self.first_epoch + (steps - 1) * self.every + self.final_epochs

    @property
    def peak_split(self) -> str | None:
        """The split whose accuracy ends the final phase (`*_peak`), None when it lasts `final_epochs` (`fixed`)."""
        return FINAL_PHASES[self.final]

    def triggered(self, epoch: int, pruning: torch.Tensor, last_step: torch.Tensor) -> torch.Tensor:
        """Replicas (bool) whose step at the start of `epoch` the trigger decides, so whose training accuracy must
        be measured: those `pruning` (steps left) past `first_epoch` whose cap (`every` epochs after `last_step`)
        has not come; none without a threshold."""
        if self.threshold is None:
            return torch.zeros_like(pruning)
        return pruning & (epoch >= self.first_epoch) & (epoch - last_step < self.every)

    def due(self, epoch: int, pruning: torch.Tensor, last_step: torch.Tensor, accuracy: torch.Tensor) -> torch.Tensor:
        """Replicas (bool) whose step fires at the start of `epoch`: those `pruning` past `first_epoch` whose cap has
        come, or whose training `accuracy` (NaN where not measured: never fires) reached the threshold."""
        pending = pruning & (epoch >= self.first_epoch)
        due = pending & (epoch - last_step >= self.every)
        if self.threshold is not None:
            due |= pending & (accuracy >= self.threshold)
        return due

    def final_end(self, last_step: torch.Tensor) -> torch.Tensor:
        """The epoch training ends, at the latest, for replicas whose last step was at `last_step`."""
        return last_step + self.final_epochs

    def past_peak(self, accuracy: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
        """Replicas (bool) whose `*_peak` final phase ends now: `accuracy` on its split, measured at the start of
        this epoch (NaN where not: never ends), no higher than `peak`, the one measured at the start of the last."""
        return accuracy <= peak
