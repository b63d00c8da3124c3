"""Mid-run checkpoints: a job's whole training state, written at the end of an epoch every `every_s` seconds and when
a scheduler asks the job to stop, so that rerunning the same command resumes there and ends with exactly the numbers
of a run that was never stopped.

Lightning writes and restores it (`Trainer.save_checkpoint`, `Trainer.fit(ckpt_path=...)`): the weights and masks,
the optimizer's momentum, the loops' progress (the epoch), and what each part adds through its hooks: the module (the
training step's counters, which replicas train and apart, divergence records; training/module.py), the data module
(each stream's shuffling generator), pruning (each replica's schedule state, the steps' history, the criterion's
state) and the weight histograms. This callback adds the job's identity (its replicas' keys), whether training was
ending, and torch's global generators (CPU, CUDA); numpy's and Python's are never drawn from in training.

Stop signals (SIGTERM; SIGUSR2, which submitit's SLURM jobs get before their time limit) are held while an epoch
runs, as Lightning holds SIGTERM: when it ends the checkpoint is written, then the signal goes to the handler it had
(the one-line stop of src/train.py, submitit's requeue, or the signal's default action). A second one acts at once.
"""
import logging
import signal
import threading
import time
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Checkpoint

from ..atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = 1  # what the job's parts save; a checkpoint of another layout is not used
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class Checkpoints(Checkpoint):
    """The checkpoint of the job training the replicas `keys`, at `path` (results.ResultStore.checkpoint_path);
    `every_s`: the most seconds of training between two (0: only at a stop signal); `at_end`: the last epoch's too
    (work after training, the quantization stage, then resumes from there)."""

    def __init__(self, path: Path, keys: list[str], every_s: float, at_end: bool = False):
        self.path, self.keys, self.every_s, self.at_end = Path(path), list(keys), every_s, at_end
        self.epochs: int | None = None  # the epochs trained that the checkpoint at `path` holds, once there is one
        self.resumed: dict | None = None  # this callback's part of the checkpoint resumed from (on_load_checkpoint)
        self.held: int | None = None  # a stop signal received during the epoch
        self.handlers: dict = {}  # stop signal -> its handler before training
        self.saved_at = 0.0  # when the last checkpoint was written, or training started

    def resumable(self) -> Path | None:
        """`path` when it holds a checkpoint of this job to resume from; a damaged one, or one of other replicas or
        of another layout, is a one-line warning and is not used (the job starts from epoch 0 and overwrites it)."""
        if not self.path.exists():
            return None
        try:
            job = torch.load(self.path, map_location="cpu", weights_only=True).get("job")
        except Exception as err:  # cut short or edited: torch raises several kinds, all meaning unreadable
            why = f"unreadable: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        else:
            why = ("not a checkpoint of this version" if not isinstance(job, dict) or job.get("format") != FORMAT
                   else "another job's: other replicas" if job.get("keys") != self.keys else None)  # fmt: skip
        if why:
            log.warning(f"warning: checkpoint {self.path} not used ({why}); the job starts from epoch 0")
            return None
        self.epochs = job["epochs"]
        return self.path

    def remove(self) -> None:
        """The job is done: its checkpoint goes."""
        self.path.unlink(missing_ok=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["job"] = {"format": FORMAT, "keys": self.keys, "epochs": trainer.current_epoch + 1,
                             "should_stop": trainer.should_stop, "random": random_states()}  # fmt: skip

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.resumed = checkpoint["job"]

    def on_train_start(self, trainer, pl_module) -> None:
        if self.resumed is not None:
            set_random_states(self.resumed["random"])
            trainer.should_stop = self.resumed["should_stop"]  # a checkpoint of the last epoch: only testing is left
        self.saved_at = time.monotonic()
        if threading.current_thread() is threading.main_thread():  # only it may set signal handlers
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self.handlers[signum] = signal.signal(signum, self.hold)

    def hold(self, signum, frame) -> None:
        if self.held is None:
            self.held = signum
        else:
            self.deliver(signum)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """A checkpoint callback, so Lightning calls this after every other part's epoch end (pruning's included)."""
        due = self.every_s and time.monotonic() - self.saved_at >= self.every_s
        ending = self.at_end and (trainer.should_stop or trainer.current_epoch + 1 >= trainer.max_epochs)
        if self.held is not None or due or ending:
            self.save(trainer)
        if self.held is not None:
            self.deliver(self.held)

    def save(self, trainer) -> None:
        with atomic_path(self.path, suffix=".ckpt") as tmp:
            trainer.save_checkpoint(tmp)
        self.epochs, self.saved_at = trainer.current_epoch + 1, time.monotonic()

    def deliver(self, signum: int) -> None:
        """The signal to the handler it had before training (which may raise, exit or requeue the job)."""
        self.held = None
        self.restore_handlers()
        signal.raise_signal(signum)

    def restore_handlers(self) -> None:
        for signum, handler in self.handlers.items():
            signal.signal(signum, handler)
        self.handlers = {}

    def on_train_end(self, trainer, pl_module) -> None:
        if self.held is not None:  # received since the last epoch ended: it acts now, before testing
            self.deliver(self.held)
        self.restore_handlers()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """Whatever stopped the job, say where it can resume from."""
        self.restore_handlers()
        if self.epochs is not None and self.path.exists():
            exception.add_note(f"its state after epoch {self.epochs} is saved in {self.path}: rerunning the same "
                               "command resumes from there")  # fmt: skip


def random_states() -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
