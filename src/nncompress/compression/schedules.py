"""Pruning schedules: the removed fraction after step i of k, and when steps happen."""
from dataclasses import dataclass


class PowerSchedule:
    """The paper's (section 3.2.1): S * (i / k)^(1 / c); large steps first, smaller ones as the net thins."""

    def __init__(self, steps: int = 15, c: float = 16.0):
        self.steps, self.c = steps, c

    def fraction(self, i: int, target: float) -> float:
        return target * (i / self.steps) ** (1.0 / self.c)


class CubicSchedule:
    """Zhu & Gupta (2018): S * (1 - (1 - i / k)^3)."""

    def __init__(self, steps: int = 15, c: float | None = None):
        self.steps = steps

    def fraction(self, i: int, target: float) -> float:
        return target * (1.0 - (1.0 - i / self.steps) ** 3)


SCHEDULES = {"power": PowerSchedule, "cubic": CubicSchedule}
FINAL_PHASES = {"fixed": None, "train_peak": "train", "test_peak": "test"}  # -> the split whose accuracy ends it


@dataclass(frozen=True)
class Timing:
    """When steps fire: not before `first_epoch`; then when the training accuracy (measured at the start of
    the epoch) reaches `threshold` (None: never early) or `every` epochs after the last step.

    When training ends after the last step (`final`): `fixed`, `final_epochs` later (the authors' code);
    `train_peak` / `test_peak`, at the first epoch whose training / test accuracy (measured at its start) is no
    higher than the epoch before, i.e. just past a local maximum (the paper's text), `final_epochs` at the most.
    `test_peak` selects on the test set, which flatters the result: an ablation, not a protocol to report.
    """

    first_epoch: int
    every: int
    threshold: float | None
    final_epochs: int
    final: str = "fixed"

    def max_epochs(self, steps: int) -> int:
        return self.first_epoch + (steps - 1) * self.every + self.final_epochs
