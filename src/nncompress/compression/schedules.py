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


@dataclass(frozen=True)
class Timing:
    """When steps fire: not before `first_epoch`; then when the training accuracy (measured at the start of
    the epoch) reaches `threshold` (None: never early) or `every` epochs after the last step; training ends
    `final_epochs` after the last step."""

    first_epoch: int
    every: int
    threshold: float | None
    final_epochs: int

    def max_epochs(self, steps: int) -> int:
        return self.first_epoch + (steps - 1) * self.every + self.final_epochs
