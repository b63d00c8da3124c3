"""Progress output: one line per epoch in logs and CI (no carriage-return spam), a tqdm bar per job on a terminal
(the lines then go to the run's train.log only), and none of Lightning's banners and warnings about what this
trainer does on purpose."""
import logging
import sys
import time
import warnings
from collections import deque

from pytorch_lightning.callbacks import ProgressBar
from tqdm import tqdm

from ..console import FILE_ONLY
from .pruning import PruningCallback

log = logging.getLogger(__name__)


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
    """Logs `epoch i/n  loss ...  train acc ...  elapsed  ETA` after every training epoch: the training accuracy
    (mean over the replicas it measured) when the pruning callback measured it that epoch, and the ETA from the
    last epochs' mean time. A pruning run's length depends on when its steps fire: its ETA counts the epochs the
    pruning callback expects (`end_estimate`), followed by the longest it can take, `(at most ...)`. `job`: the
    job's number when its sweep runs jobs side by side, then the start of each line (`#3 epoch 7/28 ...`)."""

    RECENT = 10  # epochs the time per epoch is averaged over: they get cheaper as replicas finish

    def __init__(self, job: int | None = None):
        super().__init__()
        self.prefix = "" if job is None else f"#{job} "

    def on_train_start(self, trainer, pl_module):
        self.start = self.last = time.time()
        self.recent: deque[float] = deque(maxlen=self.RECENT)

    def on_train_epoch_end(self, trainer, pl_module):
        log.info(self.epoch_line(trainer))

    def epoch_line(self, trainer) -> str:
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
        return self.prefix + "  ".join(parts)


class EpochBar(EpochLines):
    """On a terminal: one tqdm bar over the job's epochs, the epoch line beside it (so the total and the run's
    ETA); the lines themselves go to train.log only. Jobs side by side each draw on their own terminal line
    (`slot`), and their bars go when they end."""

    def __init__(self, job: int | None = None, slot: int = 0, stream=None):
        super().__init__(job)
        self.slot, self.stream = slot, stream or sys.stdout

    def on_train_start(self, trainer, pl_module):
        super().on_train_start(trainer, pl_module)
        self.bar = tqdm(total=trainer.max_epochs, desc=f"{self.prefix}epoch 0/{trainer.max_epochs}", file=self.stream,
                        bar_format="{desc} |{bar}|", dynamic_ncols=True, mininterval=0, position=self.slot,
                        leave=not self.prefix)  # fmt: skip  # drawn at every epoch

    def on_train_epoch_end(self, trainer, pl_module):
        line = self.epoch_line(trainer)
        log.info(line, extra=FILE_ONLY)
        self.bar.set_description_str(line, refresh=False)
        self.bar.update(1)

    def on_train_end(self, trainer, pl_module):
        self.bar.total = self.bar.n  # a pruning run ends when its last step is done, often before max_epochs
        self.bar.close()


def progress_callback(parallel: tuple[int, int] | None = None) -> ProgressBar:
    """A bar on a terminal, epoch lines elsewhere. `parallel`: (the job's number, how many jobs run at once) when
    its sweep runs jobs side by side (hydra_job.parallel), else None."""
    job, slot = (None, 0) if parallel is None else (parallel[0], parallel[0] % parallel[1])
    return EpochBar(job, slot) if sys.stdout.isatty() else EpochLines(job)
