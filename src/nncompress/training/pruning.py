"""Lightning's hooks for pruning (compression/pruning.py), which reaches the population through the module."""
import pytorch_lightning as pl

from ..compression.pruning import Pruning


class PruningCallback(pl.Callback):
    """Runs `pruning`'s work at the start of every training epoch, and stops training once every replica is done."""

    def __init__(self, pruning: Pruning):
        self.pruning = pruning

    def state_dict(self) -> dict:
        return self.pruning.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.pruning.load_state_dict(state_dict)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.pruning.epoch_start(pl_module, trainer.current_epoch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.pruning.finished(trainer.current_epoch + 1):
            trainer.should_stop = True
