"""The Lightning callback that prunes every replica of a population on the paper's iterative schedule.

Each replica keeps its own schedule state: it is pruned by its own saliencies to its own target, its steps fire
on its own training accuracy, and once it has trained `final_epochs` after its last step (or its accuracy has
stopped rising, with `final=train_peak|test_peak`) it is frozen
(its updates masked in the training step, which stops computing it once half the population is frozen) while
slower replicas finish.
"""
import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from ..population import Population
from ..training.metrics import replica_accuracy
from .masks import prune_masks
from ..errors import UserError
from .schedules import FINAL_PHASES, Timing


SCOPES = ("global", "layer")  # rank all layers of a replica together (the authors), or each layer apart


class Pruning(pl.Callback):
    def __init__(self, saliency, schedule, timing: Timing, population: Population, scope: str = "global",
                 run_dir: Path | None = None):  # fmt: skip
        """Built from the `pruning` config node (schedule, timing, scope) and the method's `saliency`."""
        if scope not in SCOPES:
            raise UserError(f"unknown pruning.scope '{scope}' (choose from: {', '.join(SCOPES)})")
        self.saliency, self.schedule, self.timing, self.scope = saliency, schedule, timing, scope
        self.population, self.run_dir = population, run_dir
        R = population.size
        self.targets = torch.tensor([1.0 - r.ratio for r in population.replicas], dtype=torch.float64)
        self.steps_done = torch.zeros(R, dtype=torch.long)
        self.first_step = torch.full((R,), -(10**9))
        self.last_step = torch.full((R,), -(10**9))
        self.end_epoch = torch.full((R,), 10**9)
        self.active = torch.ones(R, dtype=torch.bool)
        self.peak = torch.full((R,), -1.0)  # last accuracy measured after the last step (final phase `*_peak`)
        self.history: list[dict] = []  # one entry per pruning step and replica
        self.measured_train_acc = None  # (epoch, per-replica accuracy) of the last measurement
        self.lagged_accuracy = torch.full((R,), torch.nan)  # what the trigger reads with timing.trigger_lag = 1
        self.work_s = 0.0  # seconds of the per-epoch work: training accuracy for the trigger, saliencies, masks

    @property
    def max_epochs(self) -> int:
        return self.timing.max_epochs(self.schedule.steps)

    def accuracy(self, trainer, model, split: str, which: torch.Tensor) -> torch.Tensor:
        """Accuracy (R,) on `split` of the replicas `which` (bool, R), measured on them alone; NaN elsewhere."""
        index = which.nonzero().flatten()
        batches = trainer.datamodule.eval_batches(split).for_streams(model.input_streams(index))
        out = torch.full((len(which),), torch.nan)
        out[index] = replica_accuracy(model.subset(index), batches).cpu()
        return out

    def train_accuracy(self, trainer, model, which: torch.Tensor) -> torch.Tensor:
        accuracy = self.accuracy(trainer, model, "train", which)
        if trainer.logger:
            metrics = {f"train/acc/{r.name}": float(accuracy[r.index]) for r in self.population.replicas if which[r.index]}
            trainer.logger.log_metrics(metrics, step=trainer.current_epoch)
        self.measured_train_acc = (trainer.current_epoch, accuracy)  # for the epoch line (training/progress.py)
        return accuracy

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        start = time.perf_counter()
        self.update(trainer, pl_module)
        self.work_s += time.perf_counter() - start  # its share of the run (results hold the accuracies, so synced)

    def update(self, trainer, pl_module) -> None:
        """Freeze the replicas that are done, then prune those whose step is due."""
        epoch, t = trainer.current_epoch, self.timing
        if FINAL_PHASES[t.final] is not None:
            self.end_past_peaks(trainer, pl_module.model, FINAL_PHASES[t.final])
        finished = self.active & (self.end_epoch <= epoch)
        if finished.any():
            self.active &= ~finished
            pl_module.stepper.train_only(self.active)
        pending = self.active & (self.steps_done < self.schedule.steps) & (epoch >= t.first_epoch)
        due = pending & (epoch - self.last_step >= t.every)
        accuracy = torch.full((len(due),), torch.nan)
        if t.threshold is not None and t.trigger_lag:
            due |= pending & (self.lagged_accuracy >= t.threshold)  # NaN (not measured) never triggers
        elif t.threshold is not None and (pending & ~due).any():  # only replicas whose step the trigger decides
            accuracy = self.train_accuracy(trainer, pl_module.model, pending & ~due)
            due |= pending & (accuracy >= t.threshold)
        after = self.prune(trainer, pl_module, due, accuracy) if due.any() else torch.full_like(accuracy, torch.nan)
        if t.threshold is not None and t.trigger_lag:
            self.lagged_accuracy = self.next_trigger_accuracy(trainer, pl_module.model, epoch, due, after)

    def next_trigger_accuracy(self, trainer, model, epoch: int, pruned: torch.Tensor, after: torch.Tensor):
        """With `trigger_lag`, the training accuracies next epoch's trigger reads: measured now, after this
        epoch's steps (already measured for the replicas `pruned`, whose accuracies after it are `after`), for
        the replicas whose next step the trigger decides; NaN elsewhere."""
        t = self.timing
        needed = self.active & (self.steps_done < self.schedule.steps) & (epoch + 1 >= t.first_epoch)
        needed &= epoch + 1 - self.last_step < t.every  # a step the cap does not already make due
        accuracy = torch.where(needed & pruned, after, torch.nan)
        if (needed & ~pruned).any():
            accuracy = torch.where(needed & ~pruned, self.train_accuracy(trainer, model, needed & ~pruned), accuracy)
        return accuracy

    def end_past_peaks(self, trainer, model, split: str) -> None:
        """Replicas past their last step end at the first epoch whose accuracy on `split` no longer rises."""
        final = self.active & (self.steps_done == self.schedule.steps) & (trainer.current_epoch > self.last_step)
        if not final.any():
            return
        accuracy = self.accuracy(trainer, model, split, final)
        fell = final & (accuracy <= self.peak)
        self.end_epoch[fell] = trainer.current_epoch
        self.peak = torch.where(final, accuracy, self.peak)

    @torch.no_grad()
    def prune(self, trainer, pl_module, due: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        """Prune the replicas `due` (bool, R), scored on their own; `before`: training accuracies measured this
        epoch (NaN where not). Returns their training accuracies after the step (NaN elsewhere)."""
        model, epoch = pl_module.model, trainer.current_epoch
        unmeasured = due & before.isnan()
        if unmeasured.any():
            before = torch.where(unmeasured, self.train_accuracy(trainer, model, unmeasured), before)
        index = due.nonzero().flatten()
        start = time.perf_counter()
        batches = trainer.datamodule.eval_batches("train").for_streams(model.input_streams(index))
        scores = self.saliency.scores(model.subset(index), batches, pl_module.protocol.loss, index.tolist())
        saliency_s = time.perf_counter() - start
        fractions = torch.tensor([self.schedule.fraction(int(self.steps_done[r]) + 1, float(self.targets[r]))
                                  for r in index])  # fmt: skip
        masks = [layer.replica_mask().clone() for layer in model.layers]
        device_index = index.to(masks[0].device)
        new = prune_masks(scores, [m[device_index] for m in masks], fractions.to(scores[0]), self.scope)
        for layer, mask, kept in zip(model.layers, masks, new):
            mask[device_index] = kept
            layer.set_replica_mask_(mask)
        pl_module.stepper.train_only(self.active)
        after = self.train_accuracy(trainer, model, due)
        self.steps_done += due.long()
        self.first_step[due & (self.steps_done == 1)] = epoch
        self.last_step[due] = epoch
        self.end_epoch[due & (self.steps_done == self.schedule.steps)] = epoch + self.timing.final_epochs
        kept = sum(m.sum((1, 2)) for m in (layer.replica_mask() for layer in model.layers)).cpu()
        total = sum(layer.in_features * layer.out_features for layer in model.layers)
        for r in self.population.replicas:
            if due[r.index]:
                self.record(trainer, {
                    "replica": r.name, "seed": r.seed, "ratio": r.ratio, "epoch": epoch,
                    "step": int(self.steps_done[r.index]), "sparsity": 1.0 - float(kept[r.index]) / total,
                    "train_acc_before": float(before[r.index]), "train_acc_after": float(after[r.index]),
                    "saliency_time_s": saliency_s,
                })  # fmt: skip
        return after

    def record(self, trainer, entry: dict) -> None:
        self.history.append(entry)
        if self.run_dir is not None:
            with open(self.run_dir / "pruning.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
        if trainer.logger:
            name = entry["replica"]
            trainer.logger.log_metrics(
                {f"prune/sparsity/{name}": entry["sparsity"], f"prune/acc_after/{name}": entry["train_acc_after"]},
                step=trainer.current_epoch,
            )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if bool((self.end_epoch <= trainer.current_epoch + 1).all()):
            trainer.should_stop = True

    def end_estimate(self, epochs_done: int) -> tuple[float, int]:
        """After `epochs_done` epochs: how many epochs the run is expected to last, each replica still pruning
        spacing its remaining steps as its own so far (by the cap, `every`, until it has two), and the most it can
        last (every remaining step at the cap), for the progress line's ETA."""
        t, k = self.timing, self.schedule.steps
        left = (k - self.steps_done).double()
        pruning = self.active & (left > 0)
        spaced = self.steps_done >= 2
        gap = torch.where(spaced, (self.last_step - self.first_step) / (self.steps_done - 1).clamp(min=1), t.every)
        started = self.steps_done > 0
        at_cap = torch.where(started, self.last_step + t.every, t.first_epoch).clamp(min=epochs_done)
        expected_next = torch.where(started, self.last_step + gap, t.first_epoch).clamp(min=epochs_done)
        final = torch.where(self.active, self.end_epoch, 0).double()  # frozen replicas no longer count
        expected = torch.where(pruning, expected_next + (left - 1) * gap + t.final_epochs, final)
        latest = torch.where(pruning, at_cap + (left - 1) * t.every + t.final_epochs, final)
        return max(float(expected.max()), epochs_done), max(int(latest.max()), epochs_done)

    def replica_summary(self, index: int, epochs_trained: int) -> dict:
        return {
            "target_ratio": self.population.replicas[index].ratio,
            "pruning_steps": int(self.steps_done[index]),
            "last_pruning_epoch": int(self.last_step[index]) if self.steps_done[index] else None,  # epochs before it
            "epochs": int(min(self.end_epoch[index], epochs_trained)),
        }
