"""The LightningModule that trains a whole population at once.

Lightning is the outer loop (epochs, callbacks such as pruning, evaluation, logging); an epoch is one Lightning
step whose mini-batch steps run in training/step.py. The loss is the sum over replicas of each replica's
batch-mean loss, so one backward pass gives every replica exactly the gradient it would get alone. Pruning reaches
the population through the module's `PruningHost` methods (compression/host.py).
"""
import pytorch_lightning as pl
import torch

from ..compression.host import PruningHost
from ..data.module import PopulationData
from ..models.functions import LOSSES
from ..models.layers import replica_targets, stream_generators
from ..population import Population
from .metrics import ReplicaAccuracy, replica_accuracy
from .step import PopulationStep


DIVERGED = 100.0  # an epoch's mean loss above this many times the first epoch's marks a replica diverged
# A replica whose final training accuracy is at most its data's commonest class share plus this learned nothing
# (outputs stuck in saturation, or a method that destroyed the network).
CHANCE_MARGIN = 0.01


def chance(y: torch.Tensor, stream_datasets: torch.Tensor, per_stream: int) -> torch.Tensor:
    """Per replica (R,), the accuracy of always answering the commonest class of the training labels it reads:
    y (K, n) stacks K datasets' labels, stream g reads dataset stream_datasets[g], replicas are stream-major."""
    per_dataset = torch.stack([torch.bincount(labels).max() / labels.numel() for labels in y.cpu()])
    return per_dataset[stream_datasets.cpu()].repeat_interleave(per_stream)


class PopulationClassifier(pl.LightningModule, PruningHost):
    def __init__(self, model, population: Population, protocol, epochs: int, regularizer=None, cuda_graph: bool = True,
                 compact: bool = True, restarts: bool = False):  # fmt: skip
        """`restarts`: pruning restarts replicas' training (`restart_schedule`), so each keeps its own schedule."""
        super().__init__()
        self.automatic_optimization = False  # the optimizer steps inside PopulationStep
        self.model, self.population, self.protocol, self.epochs = model, population, protocol, epochs
        self.regularizer, self.cuda_graph, self.compact, self.restarts = regularizer, cuda_graph, compact, restarts
        self.loss_fn = LOSSES[protocol.loss].value
        R = population.size
        self.val_acc = ReplicaAccuracy(R)
        self.eval_acc = torch.nn.ModuleList(ReplicaAccuracy(R) for _ in PopulationData.EVAL_SETS)
        self.accuracy: dict[str, torch.Tensor] = {}
        self.stepper: PopulationStep | None = None
        self.first_loss = None  # (R,) each replica's mean loss in its first epoch
        self.diverged = torch.zeros(R, dtype=torch.long)  # epoch (from 1) a replica diverged in, 0 if never
        self.finite_logits = torch.ones(R, dtype=torch.bool)  # every test/train logit finite
        self.chance = torch.zeros(R)  # each replica's chance-level training accuracy (on_train_start)
        self.resumed: dict | None = None  # what a checkpoint restores once training starts (on_load_checkpoint)

    def configure_optimizers(self):
        p = self.protocol
        lr = torch.tensor(float(p.lr), device=self.device)  # a tensor: each step writes its own learning rate
        # fused: one kernel over all replicas' weights; the optimizer step is memory-bound at these sizes
        return torch.optim.SGD(self.model.parameters(), lr=lr, momentum=p.momentum, nesterov=p.nesterov, fused=True)

    def on_fit_start(self) -> None:
        """Here, not when training starts: a job resumed from its last epoch's checkpoint trains no epoch (Lightning
        then skips on_train_start), yet is recorded."""
        data = self.trainer.datamodule
        self.chance = chance(data.data["train"][1], data.stream_datasets, self.population.per_stream)

    def on_train_start(self) -> None:
        data, p = self.trainer.datamodule, self.protocol
        regularized = [layer.stored for layer in self.model.layers] if self.regularizer else []
        autocast = torch.bfloat16 if str(self.trainer.precision).startswith("bf16") else None
        self.stepper = PopulationStep(
            self.model, self.loss_fn, self.optimizers().optimizer, data.train_x, data.train_y, data.batch_size,
            -(-data.n_train // data.batch_size), p.lr_schedule, self.epochs, self.regularizer, regularized,
            p.weight_decay, autocast, self.cuda_graph, self.compact, self.restarts,
        )  # fmt: skip
        if self.resumed is not None:
            self.resume(self.resumed)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Lightning's checkpoint holds the weights, masks and optimizer; this adds what else training keeps between
        epochs: the step's state, the first and diverged epochs' records, the last validation accuracy and the
        dropout streams' generators."""
        checkpoint["population"] = {
            "step": self.stepper.state_dict(),
            "first_loss": None if self.first_loss is None else self.first_loss.cpu(),
            "diverged": self.diverged,
            "accuracy": self.accuracy,
            "dropout": [g.get_state() for g in stream_generators(self.model, self.device)],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.resumed = checkpoint["population"]  # the step it restores is built when training starts

    def resume(self, state: dict) -> None:
        self.stepper.load_state_dict(state["step"])
        self.first_loss = None if state["first_loss"] is None else state["first_loss"].to(self.device)
        self.diverged, self.accuracy = state["diverged"], state["accuracy"]
        for generator, saved in zip(stream_generators(self.model, self.device), state["dropout"], strict=True):
            generator.set_state(saved)

    @property
    def loss_name(self) -> str:
        return self.protocol.loss

    def eval_batches(self, split: str, index: torch.Tensor):
        return self.trainer.datamodule.eval_batches(split).for_streams(self.model.input_streams(index))

    def subset_accuracy(self, split: str, index: torch.Tensor) -> torch.Tensor:
        return replica_accuracy(self.model.subset(index), self.eval_batches(split, index)).cpu()

    def masks(self) -> list[torch.Tensor]:
        return self.stepper.masks()

    def set_masks(self, masks: list[torch.Tensor]) -> None:
        self.stepper.set_masks(masks)

    def set_weights(self, index: torch.Tensor, weights: list[torch.Tensor]) -> None:
        self.stepper.set_weights(index, weights)

    def train_only(self, active: torch.Tensor) -> None:
        self.stepper.train_only(active)

    def replica_parameters(self, index: torch.Tensor) -> list[torch.Tensor]:
        return self.stepper.replica_parameters(index)

    def rewind(self, index: torch.Tensor, parameters: list[torch.Tensor]) -> None:
        self.stepper.rewind(index, parameters)

    def restart_schedule(self, index: torch.Tensor, epoch: int) -> None:
        self.stepper.restart(index, epoch)

    def log_metrics(self, metrics: dict[str, float], epoch: int) -> None:
        if self.logger:
            self.logger.log_metrics(metrics, step=epoch)

    def training_step(self, order, batch_idx):
        """One epoch: `order` (G, n) is every stream's shuffled rows of the training data."""
        losses = self.stepper.run_epoch(order)
        self.first_loss = losses.detach().clone() if self.first_loss is None else self.first_loss
        # Diverged: a non-finite loss, or a hundred times the first epoch's (cross-entropy has no ceiling).
        ok = torch.isfinite(losses) & (losses <= DIVERGED * self.first_loss)
        if not bool(ok.all()):  # one host sync an epoch
            self.diverged[(self.diverged == 0) & ~ok.cpu()] = self.current_epoch + 1
            self.trainer.should_stop = bool((self.diverged > 0).all())  # nothing left to train
        mean = torch.where(ok, losses, 0).sum() / ok.sum().clamp(min=1)
        self.log("train/loss", mean, prog_bar=True, on_step=False, on_epoch=True)
        if self.logger:  # every replica's curve; one logger call (self.log costs about 0.1 ms a metric)
            per_replica = losses.detach().cpu().tolist()
            names = (r.name for r in self.population.replicas)
            self.logger.log_metrics({f"train/loss/{n}": v for n, v in zip(names, per_replica)}, step=self.current_epoch)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.val_acc.update(logits, replica_targets(y, logits.shape[0]))

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute().reshape(-1)
        self.accuracy["val"] = acc.cpu()
        self.log("val/acc", acc.mean(), prog_bar=True)
        self.val_acc.reset()

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, y = batch
        logits = self.model(x)
        self.eval_acc[dataloader_idx].update(logits, replica_targets(y, logits.shape[0]))
        self.finite_logits &= torch.isfinite(logits).flatten(1).all(1).cpu()

    def failed(self) -> dict[int, str]:
        """Replica index -> why its result must not be stored: a diverged loss, or non-finite outputs."""
        why = {int(r): f"diverged in epoch {int(self.diverged[r])}" for r in self.diverged.nonzero().flatten()}
        for r in (~self.finite_logits).nonzero().flatten():
            why.setdefault(int(r), "non-finite outputs after training")
        return why

    def learned(self) -> torch.Tensor:
        """(R,) bool: the final training accuracy beats chance by more than CHANCE_MARGIN. A replica that did not is
        stored (a method that destroys a network has that result; leaving it out would flatter the method) but
        flagged, so no one reads it as a trained network."""
        return self.accuracy["train"] > self.chance + CHANCE_MARGIN

    def on_test_epoch_end(self) -> None:
        for split, metric in zip(PopulationData.EVAL_SETS, self.eval_acc):
            acc = metric.compute().reshape(-1)  # torchmetrics squeezes a one-replica result
            self.accuracy[split] = acc.cpu()
            self.log_dict({f"{split}/acc/{r.name}": acc[r.index] for r in self.population.replicas})
            self.log(f"{split}/acc_mean", acc.mean())
            metric.reset()
