"""Weight sharing by k-means (Deep Compression, Han, Mao & Dally 2016): per layer and replica, the non-zero weights
are clustered into 2^bits shared values, each weight replaced by its cluster's value; fine-tuning then moves only
the shared values, each by the sum of its weights' gradients. Pruned (zero) weights stay zero.

Written with tensors over a whole population, not with scikit-learn or SciPy, whose k-means cluster one set at a
time: in one dimension a cluster is an interval of the sorted values, so a Lloyd iteration of every replica is a
`searchsorted` of the midpoints between centroids into its sorted weights and a difference of prefix sums, exact
per replica whatever the population around it.
"""
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..typed import LONG_RUN, MAX_EPOCHS, Typed, bounded

# Lloyd's iterations stop once no assignment changes, which happens after finitely many (each lowers the cost until
# then); this bound only keeps a cycle of floating-point ties from looping forever.
MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class KMeans(Typed):
    """The `quantize=kmeans` node: `bits` per shared value (2^bits of them per layer), `epochs` of fine-tuning the
    shared values once a replica has finished training, by plain SGD at learning rate `tune_lr` (Deep Compression's
    update: the centroid minus tune_lr times the sum of its weights' gradients). A new option gets the default every
    earlier run had, so stored results keep their keys."""

    node: ClassVar[str] = "quantize"
    name: str = "kmeans"
    bits: int = bounded(5, low=1, high=8, why="a shared value is stored as a code of at most one byte")
    epochs: int = bounded(3, low=0, high=MAX_EPOCHS, why=LONG_RUN)
    # not `lr`: an option's short name in report labels is the shortest tail no other has (protocol.lr's `lr`)
    tune_lr: float = bounded(0.02, low=0.0)

    @property
    def clusters(self) -> int:
        return 2**self.bits


@torch.no_grad()
def kmeans(values: torch.Tensor, kept: torch.Tensor, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of `values` (R, N), one-dimensional k-means of its `kept` entries (bool, R, N) into `clusters` centroids,
    initialised evenly spaced from their minimum to their maximum (Deep Compression's linear initialisation), then
    Lloyd's iterations until no assignment changes; a value halfway between two centroids joins the lower. Computed in
    float64. Returns the centroids (R, clusters), ascending, a cluster left empty keeping its initial value, and each
    value's cluster (R, N) (0 where not kept). A row with nothing kept gets centroids 0."""
    v = values.double()
    inf = torch.tensor(torch.inf, dtype=v.dtype, device=v.device)
    ordered = torch.where(kept, v, inf).sort(1).values  # the kept values ascending, then +inf
    count = kept.sum(1, keepdim=True)
    prefix = torch.nn.functional.pad(torch.where(ordered.isinf(), 0, ordered).cumsum(1), (1, 0))  # sums of the first j
    low = torch.where(count > 0, ordered[:, :1], 0)
    high = torch.where(count > 0, ordered.gather(1, (count - 1).clamp(min=0)), 0)
    steps = torch.arange(clusters, dtype=v.dtype, device=v.device) / max(clusters - 1, 1)
    centroids = low + (high - low) * steps
    ends = splits(ordered, centroids, count)
    for _ in range(MAX_ITERATIONS):
        starts = torch.nn.functional.pad(ends[:, :-1], (1, 0))
        size = ends - starts
        means = (prefix.gather(1, ends) - prefix.gather(1, starts)) / size.clamp(min=1)
        # a no-op in exact arithmetic (cluster k's mean lies between the midpoints around centroid k); it keeps a
        # rounding from unsorting what searchsorted reads
        centroids = torch.where(size > 0, means, centroids).sort(1).values
        new = splits(ordered, centroids, count)
        if torch.equal(new, ends):
            break
        ends = new
    return centroids, torch.where(kept, assign(v, centroids), 0)


def midpoints(centroids: torch.Tensor) -> torch.Tensor:
    return (centroids[:, :-1] + centroids[:, 1:]) / 2


def splits(ordered: torch.Tensor, centroids: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Where each cluster ends in the sorted values `ordered` (R, N): (R, clusters), cluster k holding positions
    [end k-1, end k) (the values at most the midpoint above centroid k)."""
    return torch.cat([torch.searchsorted(ordered, midpoints(centroids).contiguous(), right=True), count], 1)


def assign(values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The nearest of the ascending `centroids` (R, K) to each of `values` (R, N), the lower one at a tie."""
    return torch.searchsorted(midpoints(centroids).contiguous(), values.contiguous())


def centroid_gradients(grad: torch.Tensor, codes: torch.Tensor, kept: torch.Tensor, clusters: int) -> torch.Tensor:
    """The gradient of each shared value (R, clusters): the sum of the gradients `grad` (R, N) of the kept weights
    that share it (`codes`, R, N), as Deep Compression groups them (deterministic on a GPU too under
    `torch.use_deterministic_algorithms`)."""
    out = torch.zeros(grad.shape[0], clusters, dtype=grad.dtype, device=grad.device)
    return out.scatter_add_(1, codes, torch.where(kept, grad, 0))
