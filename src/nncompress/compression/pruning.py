"""Pruning every replica of a population on the paper's iterative schedule, at the start of each epoch.

Each replica keeps its own schedule state: it is pruned by its own saliencies to its own target, its steps fire
on its own training accuracy (when, `Timing` says), and once it has trained `final_epochs` after its last step (or
its accuracy has stopped rising, with `final=train_peak|test_peak`) it is frozen (its updates masked in the
training step, which stops computing it once half the population is frozen) while slower replicas finish.

All it needs from the training comes through `PruningHost` (host.py); training/pruning.py calls it from Lightning.
"""
import json
import time
from pathlib import Path

import torch

from ..atomic import write_text
from ..errors import UserError
from ..population import Population
from .host import PruningHost
from .masks import SCOPES, prune_masks
from .saliency import Criterion
from .schedules import Timing


class Pruning:
    def __init__(self, saliency: Criterion, schedule, timing: Timing, population: Population, scope: str = "global",
                 run_dir: Path | None = None, keep: float = 1.0, ratio_sizes_model: bool = False):  # fmt: skip
        """Built from the `pruning` config node (schedule, timing, scope, keep) and the method's `saliency`.

        A replica keeps its `ratio` of its weights, or, where the ratio sizes the model itself (`ratio_sizes_model`:
        a HashedNet's buckets, `ModelSpec.takes_ratio`), `keep` of its stored values (config.check_family checks
        `keep` before any work)."""
        if scope not in SCOPES:
            raise UserError(f"unknown pruning.scope '{scope}' (choose from: {', '.join(SCOPES)})")
        if not isinstance(saliency, Criterion):
            raise UserError(f"method.saliency: {type(saliency).__qualname__} is no pruning criterion (a subclass of "
                            "nncompress.compression.saliency.Criterion)")  # fmt: skip
        self.saliency, self.schedule, self.timing, self.scope = saliency, schedule, timing, scope
        saliency.start(population)
        self.population, self.run_dir = population, run_dir
        R = population.size
        kept = [keep if ratio_sizes_model else r.ratio for r in population.replicas]
        self.targets = torch.tensor([1.0 - k for k in kept], dtype=torch.float64)
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

    def still_pruning(self) -> torch.Tensor:
        """Replicas (bool) still training with steps left."""
        return self.active & (self.steps_done < self.schedule.steps)

    def finished(self, epochs: int) -> bool:
        """Whether every replica is done after `epochs` epochs of training."""
        return bool((self.end_epoch <= epochs).all())

    def accuracy(self, host: PruningHost, split: str, which: torch.Tensor) -> torch.Tensor:
        """Accuracy (R,) on `split` of the replicas `which` (bool, R), measured on them alone; NaN elsewhere."""
        index = which.nonzero().flatten()
        out = torch.full((len(which),), torch.nan)
        out[index] = host.subset_accuracy(split, index)
        return out

    def train_accuracy(self, host: PruningHost, epoch: int, which: torch.Tensor) -> torch.Tensor:
        accuracy = self.accuracy(host, "train", which)
        metrics = {f"train/acc/{r.name}": float(accuracy[r.index]) for r in self.population.replicas if which[r.index]}
        host.log_metrics(metrics, epoch)
        self.measured_train_acc = (epoch, accuracy)  # for the epoch line (training/progress.py)
        return accuracy

    def epoch_start(self, host: PruningHost, epoch: int) -> None:
        """The work before training epoch `epoch`, timed: its share of the run (results hold the accuracies, so
        every timed piece is synced)."""
        start = time.perf_counter()
        self.update(host, epoch)
        self.work_s += time.perf_counter() - start

    def update(self, host: PruningHost, epoch: int) -> None:
        """Freeze the replicas that are done, then prune those whose step is due."""
        t = self.timing
        self.saliency.start_epoch(host, epoch)
        if t.peak_split is not None:
            self.end_past_peaks(host, epoch, t.peak_split)
        finished = self.active & (self.end_epoch <= epoch)
        if finished.any():
            self.active &= ~finished
            host.train_only(self.active)
        before = torch.full((len(self.active),), torch.nan)  # training accuracies measured this epoch
        if t.trigger_lag:
            due = t.due(epoch, self.still_pruning(), self.last_step, self.lagged_accuracy)
        else:
            triggered = t.triggered(epoch, self.still_pruning(), self.last_step)  # only they need an accuracy
            if triggered.any():
                before = self.train_accuracy(host, epoch, triggered)
            due = t.due(epoch, self.still_pruning(), self.last_step, before)
        after = self.prune(host, epoch, due, before) if due.any() else torch.full_like(before, torch.nan)
        if t.threshold is not None and t.trigger_lag:
            self.lagged_accuracy = self.next_trigger_accuracy(host, epoch, due, after)

    def next_trigger_accuracy(self, host: PruningHost, epoch: int, pruned: torch.Tensor, after: torch.Tensor):
        """With `trigger_lag`, the training accuracies next epoch's trigger reads: measured now, after this
        epoch's steps (already measured for the replicas `pruned`, whose accuracies after it are `after`), for
        the replicas whose next step the trigger decides; NaN elsewhere."""
        needed = self.timing.triggered(epoch + 1, self.still_pruning(), self.last_step)
        accuracy = torch.where(needed & pruned, after, torch.nan)
        if (needed & ~pruned).any():
            accuracy = torch.where(needed & ~pruned, self.train_accuracy(host, epoch, needed & ~pruned), accuracy)
        return accuracy

    def end_past_peaks(self, host: PruningHost, epoch: int, split: str) -> None:
        """Replicas past their last step end at the first epoch whose accuracy on `split` no longer rises."""
        final = self.active & (self.steps_done == self.schedule.steps) & (epoch > self.last_step)
        if not final.any():
            return
        accuracy = self.accuracy(host, split, final)
        self.end_epoch[final & self.timing.past_peak(accuracy, self.peak)] = epoch
        self.peak = torch.where(final, accuracy, self.peak)

    @torch.no_grad()
    def prune(self, host: PruningHost, epoch: int, due: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
        """Prune the replicas `due` (bool, R), scored on their own; `before`: training accuracies measured this
        epoch (NaN where not). Returns their training accuracies after the step (NaN elsewhere)."""
        unmeasured = due & before.isnan()
        if unmeasured.any():
            before = torch.where(unmeasured, self.train_accuracy(host, epoch, unmeasured), before)
        index = due.nonzero().flatten()
        start = time.perf_counter()
        model, batches, replicas = host.model.subset(index), host.eval_batches("train", index), index.tolist()
        scores = self.saliency.scores(model, batches, host.loss_name, replicas)
        tied = host.model.tied_weights(index)
        if tied is not None:  # ranked by stored value (a HashedNet's buckets)
            scores = self.saliency.tied(scores, tied, replicas)
        saliency_s = time.perf_counter() - start
        fractions = torch.tensor([self.schedule.fraction(int(self.steps_done[r]) + 1, float(self.targets[r]))
                                  for r in index])  # fmt: skip
        masks = host.masks()
        device_index = index.to(masks[0].device)
        units = [layer.units().to(masks[0].device) for layer in host.model.layers]
        new = prune_masks(scores, [m[device_index] for m in masks], fractions.to(scores[0]), self.scope,
                          None if tied is None else [u[device_index] for u in units])  # fmt: skip
        for mask, kept in zip(masks, self.saliency.regrow(model, new, batches, host.loss_name, replicas)):
            mask[device_index] = kept
        start = time.perf_counter()
        weights = self.saliency.compensate(model, [m[device_index] for m in masks], batches, host.loss_name, replicas)
        saliency_s += time.perf_counter() - start
        host.set_masks(masks)
        if weights is not None:
            host.set_weights(index, weights)
        self.saliency.after_step(host, index)
        after = self.train_accuracy(host, epoch, due)
        self.steps_done += due.long()
        self.first_step[due & (self.steps_done == 1)] = epoch
        self.last_step[due] = epoch
        last = due & (self.steps_done == self.schedule.steps)
        self.end_epoch[last] = self.timing.final_end(self.last_step[last])
        kept = sum(m.sum((1, 2)) for m in masks).cpu()
        total = sum(units).cpu()  # stored values per replica
        for r in self.population.replicas:
            if due[r.index]:
                self.record(host, {
                    "replica": r.name, "seed": r.seed, "ratio": r.ratio, "epoch": epoch,
                    "step": int(self.steps_done[r.index]), "sparsity": 1.0 - float(kept[r.index]) / int(total[r.index]),
                    "train_acc_before": float(before[r.index]), "train_acc_after": float(after[r.index]),
                    "saliency_time_s": saliency_s,
                })  # fmt: skip
        return after

    def record(self, host: PruningHost, entry: dict) -> None:
        self.history.append(entry)
        if self.run_dir is not None:
            with open(self.run_dir / "pruning.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
        name = entry["replica"]
        metrics = {f"prune/sparsity/{name}": entry["sparsity"], f"prune/acc_after/{name}": entry["train_acc_after"]}
        host.log_metrics(metrics, entry["epoch"])

    STATE = ("steps_done", "first_step", "last_step", "end_epoch", "active", "peak", "history", "measured_train_acc",
             "lagged_accuracy")  # fmt: skip

    def state_dict(self) -> dict:
        """Each replica's schedule state, the steps' history and the criterion's own state, for a checkpoint (not
        `work_s`: a resumed run reports the share of its own time)."""
        return {**{name: getattr(self, name) for name in self.STATE}, "saliency": self.saliency.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Back to where `state_dict` was taken; the run directory's `pruning.jsonl` gets the steps taken so far."""
        for name in self.STATE:
            setattr(self, name, state[name])
        self.saliency.load_state_dict(state["saliency"])
        if self.run_dir is not None:
            write_text(self.run_dir / "pruning.jsonl", "".join(json.dumps(entry) + "\n" for entry in self.history))

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
