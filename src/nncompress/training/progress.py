"""Progress output: a live bar on a terminal, one line per epoch in logs and CI (no carriage-return spam)."""
import sys
import time

from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar


class EpochLines(ProgressBar):
    """Prints `epoch i/n  loss ...  elapsed` after every training epoch."""

    def on_train_start(self, trainer, pl_module):
        self.start = time.time()

    def on_train_epoch_end(self, trainer, pl_module):
        metrics = "  ".join(f"{k} {float(v):.4f}" for k, v in trainer.progress_bar_metrics.items())
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {metrics}  {time.time() - self.start:.1f} s",
              flush=True)


def progress_callback() -> ProgressBar:
    return TQDMProgressBar(refresh_rate=20) if sys.stdout.isatty() else EpochLines()
