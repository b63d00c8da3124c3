"""The quantization stage (`quantize=kmeans`), run once every replica has finished its training (pruning's final
phase included) and before the population is tested: every layer of every replica shares its non-zero stored
values (an MLP's weights, a HashedNet's buckets) by k-means (compression/quantization.py), then `epochs` epochs
fine-tune the shared values alone.

After training, not within it: a replica's stage then depends on its trained weights and seed only, not on the
epoch the population's slowest replica ends in, since each stream shuffles the data with a generator of its own
(seeded for this stage), so a replica is quantized alike alone or in any population. A job stopped during the
stage resumes from the checkpoint of its last training epoch (training/checkpoint.py) and runs the stage again.
"""
import logging
from dataclasses import dataclass

import torch

from ..compression.quantization import KMeans, centroid_gradients, kmeans
from ..data.module import EpochOrders, PopulationData
from ..models.layers import PopulationLinear, replica_targets

log = logging.getLogger(__name__)


@dataclass
class Codebook:
    """One layer's shared values per replica: `centroids` (R, K), each kept stored value's index into them (`codes`,
    R, N), and which are kept (`kept`, R, N: the non-zero ones when quantized). The stored values are the layer's
    `stored` parameter as `replica_units` lays it out: an MLP's weights, a HashedNet's buckets."""

    layer: PopulationLinear
    centroids: torch.Tensor
    codes: torch.Tensor
    kept: torch.Tensor

    @classmethod
    @torch.no_grad()
    def of(cls, layer: PopulationLinear, clusters: int) -> "Codebook":
        stored = layer.replica_units().flatten(1)  # (a HashedNet's padding past a replica's buckets is zero: not kept)
        kept = stored != 0
        centroids, codes = kmeans(stored, kept, clusters)
        book = cls(layer, centroids.to(stored.dtype), codes, kept)
        book.write()
        return book

    @torch.no_grad()
    def write(self) -> None:
        """Every kept value set to its shared value, the others left at zero."""
        values = torch.where(self.kept, self.centroids.gather(1, self.codes), 0)
        everyone = torch.arange(len(values), device=values.device)
        self.layer.put_units_(self.layer.stored, everyone, values.view(self.layer.replica_units().shape))

    @torch.no_grad()
    def descend(self, grad: torch.Tensor, lr: float) -> None:
        """One SGD step of the shared values on the gradient `grad` of the layer's `stored` parameter."""
        summed = centroid_gradients(self.layer.replica_units(grad).flatten(1), self.codes, self.kept, self.centroids.shape[1])
        self.centroids.sub_(summed, alpha=lr)
        self.write()


def quantize(model, data: PopulationData, seeds: list[int], quantizer: KMeans, loss_fn,
             autocast: torch.dtype | None = None) -> list[Codebook]:  # fmt: skip
    """Quantize `model`'s layers (a population whose `layers` hold all its weights) and fine-tune the shared values
    `quantizer.epochs` epochs on `data`'s training set, stream g shuffled by a generator seeded `seeds[g]`; on the
    device of the data. Returns the layers' codebooks."""
    x, y, B = data.train_x, data.train_y, data.batch_size
    model.to(x.device)
    log.info(f"quantizing: every layer's non-zero weights to {quantizer.clusters} shared values (k-means), then "
             f"{quantizer.epochs} epoch(s) fine-tuning them")  # fmt: skip
    books = [Codebook.of(layer, quantizer.clusters) for layer in model.layers]
    orders = EpochOrders(data.n_train, (data.stream_datasets.cpu() * data.n_train).tolist(), seeds)
    weights = [book.layer.stored for book in books]
    for epoch in range(quantizer.epochs):
        order, losses = next(iter(orders)).to(x.device), []
        for start in range(0, data.n_train, B):
            rows = order[:, start : start + B]
            G, b = rows.shape
            xb, yb = x.index_select(0, rows.reshape(-1)).view(G, b, -1), y.index_select(0, rows.reshape(-1)).view(G, b)
            with torch.autocast(xb.device.type, autocast or torch.bfloat16, enabled=autocast is not None):
                logits = model(xb)
            loss = loss_fn(logits, replica_targets(yb, logits.shape[0]))
            for book, grad in zip(books, torch.autograd.grad(loss.sum(), weights)):
                book.descend(grad, quantizer.tune_lr)
            losses.append(loss.detach())
        mean = torch.stack(losses).mean(0)
        log.info(f"quantization epoch {epoch + 1}/{quantizer.epochs}  train/loss {float(mean.nanmean()):.4f}")
    return books
