"""The LightningModule that trains a whole population at once.

The loss is the sum over replicas of each replica's batch-mean loss, so one backward pass gives every
replica exactly the gradient it would get alone.
"""
import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..data.module import PopulationData
from ..population import Population
from .metrics import ReplicaAccuracy


def mse_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The authors' cost: 1/2 ||sigmoid(z) - onehot(y)||^2 per sample; mean over samples, sum over replicas."""
    a = torch.sigmoid(logits.float())  # float32 even under bf16 autocast
    onehot = F.one_hot(target, a.shape[-1]).to(a.dtype)
    return 0.5 * (a - onehot).pow(2).sum() / a.shape[1]


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), reduction="sum") / logits.shape[1]


LOSSES = {"mse": mse_loss, "cross_entropy": cross_entropy_loss}
LR_SCHEDULES = ("inv_sqrt", "cosine", "constant")


def lr_factor(schedule: str, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (counted from 0)."""
    if schedule == "inv_sqrt":  # the authors' eta_j = 2 eta_0 / sqrt(j), j the epoch counted from 1
        return 2.0 / math.sqrt(step // steps_per_epoch + 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    if schedule == "constant":
        return 1.0
    raise ValueError(schedule)


class PopulationClassifier(pl.LightningModule):
    def __init__(self, model, population: Population, protocol, steps_per_epoch: int, epochs: int):
        super().__init__()
        self.model, self.population, self.protocol = model, population, protocol
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.loss_fn = LOSSES[protocol.loss]
        R = population.size
        self.val_acc = ReplicaAccuracy(R)
        self.eval_acc = torch.nn.ModuleList(ReplicaAccuracy(R) for _ in PopulationData.EVAL_SETS)
        self.accuracy: dict[str, torch.Tensor] = {}

    def replica_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Stream labels (G, B) -> replica labels (R, B)."""
        P = self.population.per_stream
        return y if P == 1 else y.unsqueeze(1).expand(-1, P, -1).reshape(-1, y.shape[-1])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self.model(x), self.replica_targets(y))
        # Lightning's self.log costs ~1 ms a call, a third of a small step: sum on the device, log once an epoch.
        self.loss_sum = loss.detach() if batch_idx == 0 else self.loss_sum + loss.detach()
        if batch_idx == self.trainer.num_training_batches - 1:
            mean = self.loss_sum / ((batch_idx + 1) * self.population.size)
            self.log("train/loss", mean, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        p = self.protocol
        # fused: one kernel over all replicas' weights; the optimizer step is memory-bound at these sizes
        opt = torch.optim.SGD(
            self.parameters(), lr=p.lr, momentum=p.momentum, nesterov=p.nesterov, weight_decay=p.weight_decay, fused=True
        )
        total = max(1, self.steps_per_epoch * self.epochs)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: lr_factor(p.lr_schedule, step, self.steps_per_epoch, total)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_acc.update(self.model(x), y)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute().reshape(-1)
        self.accuracy["val"] = acc.cpu()
        self.log("val/acc", acc.mean(), prog_bar=True)
        self.val_acc.reset()

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, y = batch
        self.eval_acc[dataloader_idx].update(self.model(x), y)

    def on_test_epoch_end(self) -> None:
        for split, metric in zip(PopulationData.EVAL_SETS, self.eval_acc):
            acc = metric.compute().reshape(-1)  # torchmetrics squeezes a one-replica result
            self.accuracy[split] = acc.cpu()
            self.log_dict({f"{split}/acc/{r.name}": acc[r.index] for r in self.population.replicas})
            self.log(f"{split}/acc_mean", acc.mean())
            metric.reset()
