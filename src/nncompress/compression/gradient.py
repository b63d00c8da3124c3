"""Gradient of the training loss in every layer's weights, for a whole population at once (SNIP's sensitivity)."""
import torch

from ..models.functions import LOSSES
from ..models.layers import replica_targets


def loss_gradient(model, batches, loss: str) -> list[torch.Tensor]:
    """Per layer, dL/dW (R, in, out) of the training loss averaged over the samples of `batches`
    (data.module.EvalBatches), for every replica: one backward pass per batch through the replicas' summed losses,
    whose gradient in a replica's weights is its own loss's (replicas share no weight)."""
    weights = [layer.weight for layer in model.layers]
    sums = [torch.zeros_like(w) for w in weights]
    with torch.enable_grad():
        for xb, yb in batches:
            means = LOSSES[loss].value(model(xb), replica_targets(yb, model.replicas))  # (R,), each over the batch
            for total, grad in zip(sums, torch.autograd.grad(means.sum() * yb.shape[-1], weights)):
                total += grad
    return [layer.per_replica(g) / batches.samples for layer, g in zip(model.layers, sums)]
