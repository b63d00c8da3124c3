"""The training protocol (`conf/protocol/<name>.yaml`): how every replica is trained, whatever its method."""
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..errors import UserError
from ..models.functions import ACTIVATIONS, LOSSES
from ..models.layers import INITS
from ..typed import LONG_RUN, MAX_EPOCHS, Typed, bounded
from .step import LR_SCHEDULES

@dataclass(frozen=True)
class Protocol(Typed):
    """Defaults: the `fast` protocol (a modern recipe); `paper` sets the authors' values. A new option gets the
    default every earlier run had, so stored results keep their keys (results.experiment_key)."""

    node: ClassVar[str] = "protocol"
    name: str = "fast"
    activation: Literal[tuple(ACTIVATIONS)] = "relu"
    loss: Literal[tuple(LOSSES)] = "cross_entropy"
    init: Literal[INITS] = "kaiming"
    lr: float = bounded(0.05, low=0.0)
    lr_schedule: Literal[LR_SCHEDULES] = "cosine"
    momentum: float = bounded(0.9, low=0.0, high=0.999)
    nesterov: bool = True
    weight_decay: float = bounded(0.0, low=0.0)
    batch_size: int = bounded(100, low=1)
    epochs: int = bounded(15, low=1, high=MAX_EPOCHS, why=LONG_RUN)
    normalize: bool = True
    reg_lambda: float = bounded(1.0, low=0.0)

    def check(self) -> None:
        if self.lr == 0:
            raise UserError("protocol.lr must be positive, got 0")
