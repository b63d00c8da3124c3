"""Population data on the training device: the datasets a population reads, stacked into one tensor per split,
with each stream's own shuffled order for training and shared or per-stream batches for evaluation.

Batches are index gathers of those tensors, so a batch costs one gather instead of thousands of per-sample
`__getitem__` calls, and a training step can pick its batch on the device (training/step.py).
"""
import pytorch_lightning as pl
import torch

from ..errors import UserError
from .datasets import Splits
from .precision import PRECISIONS
# Per-stream evaluation batches hold streams x batch x features values; this many at most (256 MB in float32).
EVAL_BUDGET = 1 << 26


class EpochOrders:
    """One item per epoch (an epoch is one Lightning step): each stream's own shuffled order of its dataset, as
    rows (G, n) of the stacked training data (stream g reads rows offsets[g] ... offsets[g] + n - 1).

    Every stream draws its permutation from its own generator, so a replica's data order depends on its seed
    alone, not on the population around it.
    """

    def __init__(self, n: int, offsets: list[int], stream_seeds: list[int]):
        self.n, self.offsets = n, torch.tensor(offsets).unsqueeze(1)
        self.generators = [torch.Generator().manual_seed(s) for s in stream_seeds]

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield torch.stack([torch.randperm(self.n, generator=g) for g in self.generators]) + self.offsets


class EvalBatches:
    """Consecutive batches of an evaluation split.

    x (n, D), y (n,): every replica reads the same batch (x (B, D), y (B,)), so the first layer is one wide GEMM.
    x (K, n, D), y (K, n) with `streams` (G,) naming each stream's dataset: batches x (G, B, D), y (G, B).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, streams: torch.Tensor | None = None):
        self.x, self.y, self.streams = x, y, streams
        if streams is not None:
            batch_size = min(batch_size, max(1, EVAL_BUDGET // (len(streams) * x.shape[-1])))
        self.batch_size = batch_size

    @property
    def samples(self) -> int:
        return self.x.shape[-2]

    def __len__(self) -> int:
        return -(-self.samples // self.batch_size)

    def for_streams(self, streams: torch.Tensor) -> "EvalBatches":
        """The batches of a population whose stream k is stream `streams[k]` of this one."""
        if self.streams is None:
            return self
        return EvalBatches(self.x, self.y, self.batch_size, self.streams[streams.to(self.streams.device)])

    def __iter__(self):
        for i in range(0, self.samples, self.batch_size):
            x, y = self.x[..., i : i + self.batch_size, :], self.y[..., i : i + self.batch_size]
            if self.streams is not None:
                x, y = x.index_select(0, self.streams), y.index_select(0, self.streams)
            yield x, y


def stack(splits: list[Splits], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """x (K, n, D) and y (K, n) of one split of K datasets, which must be of one size."""
    xs, ys = [getattr(s, f"x_{split}") for s in splits], [getattr(s, f"y_{split}") for s in splits]
    if len({len(x) for x in xs}) > 1:
        sizes = ", ".join(f"{s.name} {len(x)}" for s, x in zip(splits, xs))
        raise UserError(f"datasets trained as one population need {split} sets of one size, got {sizes}")
    return torch.stack(xs), torch.stack(ys)


class PopulationData(pl.LightningDataModule):
    """Moves the stacked splits to the trainer's device once and serves training orders and evaluation batches.

    `stream_datasets[g]` is the index in `splits` of the dataset stream g reads (all 0 by default).
    """

    EVAL_SETS = ("test", "train")  # order of the test dataloaders

    def __init__(self, splits: list[Splits] | Splits, batch_size: int, stream_seeds: list[int],
                 eval_batch_size: int = 4000, precision: str = "32-true", stream_datasets: list[int] | None = None):  # fmt: skip
        super().__init__()
        self.splits = [splits] if isinstance(splits, Splits) else list(splits)
        self.batch_size, self.eval_batch_size, self.train_dtype = batch_size, eval_batch_size, getattr(torch, PRECISIONS[precision])
        self.stream_datasets = torch.tensor(stream_datasets or [0] * len(stream_seeds))
        self.data = {split: stack(self.splits, split) for split in ("train", "val", "test")}
        self.n_train, self.features = self.data["train"][0].shape[1:]
        self.orders = EpochOrders(self.n_train, (self.stream_datasets * self.n_train).tolist(), stream_seeds)
        self.train_x = self.train_y = None

    def setup(self, stage: str) -> None:
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        self.data = {split: (x.to(device), y.to(device)) for split, (x, y) in self.data.items()}
        self.stream_datasets = self.stream_datasets.to(device)
        if self.train_x is None:  # flat rows for the training step's gathers; evaluation keeps float32
            x, y = self.data["train"]
            self.train_x, self.train_y = x.flatten(0, 1).to(self.train_dtype), y.flatten()

    def state_dict(self) -> dict:
        """Where each stream's shuffling generator is, for a checkpoint (Lightning saves a data module's state)."""
        return {"orders": [g.get_state() for g in self.orders.generators]}

    def load_state_dict(self, state_dict: dict) -> None:
        for generator, saved in zip(self.orders.generators, state_dict["orders"], strict=True):
            generator.set_state(saved)

    def has(self, split: str) -> bool:
        return self.data[split][0].shape[1] > 0

    def eval_batches(self, split: str) -> EvalBatches:
        x, y = self.data[split]
        if len(self.splits) == 1:
            return EvalBatches(x[0], y[0], self.eval_batch_size)
        return EvalBatches(x, y, self.eval_batch_size, self.stream_datasets)

    def train_dataloader(self):
        return self.orders

    def val_dataloader(self):
        return self.eval_batches("val") if self.has("val") else []

    def test_dataloader(self):
        return [self.eval_batches(split) for split in self.EVAL_SETS]
