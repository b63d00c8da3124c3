"""Per-replica accuracy as a torchmetrics Metric.

torchmetrics' classification metrics reduce over every dimension but the sample one (and `samplewise`
concatenates per update), so none keeps one running count per replica; this one does, with torchmetrics'
state handling (reset, device moves, distributed sum).
"""
import torch
from torchmetrics import Metric

from ..models.layers import replica_targets


class ReplicaAccuracy(Metric):
    full_state_update = False

    def __init__(self, replicas: int):
        super().__init__()
        self.add_state("correct", default=torch.zeros(replicas, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(replicas, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """logits (R, B, C); target (B,) shared or (R, B)."""
        hits = logits.argmax(-1) == target
        self.correct += hits.sum(-1)
        self.total += hits.shape[-1]

    def compute(self) -> torch.Tensor:
        return self.correct.float() / self.total.clamp(min=1)


@torch.no_grad()
def replica_accuracy(model, batches) -> torch.Tensor:
    """Accuracy (R,) of every replica over evaluation `batches` (data.module.EvalBatches)."""
    metric = None
    for xb, yb in batches:
        logits = model(xb)
        if metric is None:
            metric = ReplicaAccuracy(logits.shape[0]).to(logits.device)
        metric.update(logits, replica_targets(yb, logits.shape[0]))
    return metric.compute().reshape(-1)
