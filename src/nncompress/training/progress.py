"""Progress output: a live bar on a terminal, one line per epoch in logs and CI (no carriage-return spam), and
none of Lightning's banners and warnings about what this trainer does on purpose."""
import logging
import sys
import time
import warnings
from collections import deque

from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar

from .pruning import PruningCallback


def quiet_lightning() -> None:
    """Silence the GPU/TPU availability lines, the litlogger tip and `Trainer.fit stopped` (all info-level logs),
    torch's LeafSpec deprecation raised inside Lightning, and the logging-interval warning (one step per epoch)."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*deprecated")
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    return f"{s // 60} min {s % 60:02d} s" if s < 3600 else f"{s // 3600} h {s % 3600 // 60:02d} min"


class EpochLines(ProgressBar):
    """Prints `epoch i/n  loss ...  train acc ...  elapsed  ETA` after every training epoch: the training accuracy
    (mean over the replicas it measured) when the pruning callback measured it that epoch, and the ETA from the
    last epochs' mean time. A pruning run's length depends on when its steps fire: its ETA counts the epochs the
    pruning callback expects (`end_estimate`), followed by the longest it can take, `(at most ...)`."""

    RECENT = 10  # epochs the time per epoch is averaged over: they get cheaper as replicas finish

    def on_train_start(self, trainer, pl_module):
        self.start = self.last = time.time()
        self.recent: deque[float] = deque(maxlen=self.RECENT)

    def on_train_epoch_end(self, trainer, pl_module):
        now = time.time()
        self.recent.append(now - self.last)
        self.last, done = now, trainer.current_epoch + 1
        parts = [f"epoch {done}/{trainer.max_epochs}"]
        parts += [f"{k} {float(v):.4f}" for k, v in trainer.progress_bar_metrics.items()]
        expected = latest = trainer.max_epochs
        for callback in trainer.callbacks:
            if not isinstance(callback, PruningCallback):
                continue
            measured = callback.pruning.measured_train_acc
            if measured is not None and measured[0] == trainer.current_epoch:
                parts.append(f"train acc {float(measured[1].nanmean()):.4f}")
            expected, latest = callback.pruning.end_estimate(done)
        per_epoch = sum(self.recent) / len(self.recent)
        expected, latest = min(expected, trainer.max_epochs), min(latest, trainer.max_epochs)
        eta = f"ETA {duration(per_epoch * (expected - done))}"
        if expected < latest:
            eta += f" (at most {duration(per_epoch * (latest - done))})"
        parts += [f"{duration(now - self.start)} elapsed", eta]
        print("  ".join(parts), flush=True)


def progress_callback() -> ProgressBar:
    return TQDMProgressBar(refresh_rate=20) if sys.stdout.isatty() else EpochLines()
