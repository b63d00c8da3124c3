"""In-memory batching for populations: the data stays one tensor (on the training device) and batches are
index slices of it, so a batch costs one gather instead of thousands of per-sample `__getitem__` calls."""
import math

import pytorch_lightning as pl
import torch

from .datasets import Splits

# Lightning precision -> dtype the training batches are stored in: under bf16 autocast the matmuls read
# bfloat16 anyway, so storing it halves the bytes every step's batch gather moves.
PRECISIONS = {"32-true": torch.float32, "bf16-mixed": torch.bfloat16}


class StreamBatches:
    """Shuffled training mini-batches for G independent data streams, as (x (G, B, D), y (G, B)).

    Each stream draws its own permutation every epoch from its own generator, so replicas on different
    streams see different data orders; the last partial batch is kept.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, stream_seeds: list[int]):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generators = [torch.Generator().manual_seed(s) for s in stream_seeds]

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def permutations(self) -> torch.Tensor:
        return torch.stack([torch.randperm(len(self.x), generator=g) for g in self.generators])

    def __iter__(self):
        perms = self.permutations().to(self.x.device)
        for i in range(len(self)):
            idx = perms[:, i * self.batch_size : (i + 1) * self.batch_size]
            # index_select on the flat index is about twice as fast as advanced indexing x[idx] on CPU
            x = self.x.index_select(0, idx.reshape(-1)).view(*idx.shape, self.x.shape[-1])
            yield x, self.y[idx]


class EvalBatches:
    """Consecutive batches (x (B, D), y (B,)) shared by every replica."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.x), self.batch_size):
            yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]


class PopulationData(pl.LightningDataModule):
    """Moves the splits to the trainer's device once and serves stream and evaluation batches from there."""

    EVAL_SETS = ("test", "train")  # order of the test dataloaders

    def __init__(self, splits: Splits, batch_size: int, stream_seeds: list[int], eval_batch_size: int = 4000,
                 precision: str = "32-true"):
        super().__init__()
        self.splits, self.batch_size, self.eval_batch_size = splits, batch_size, eval_batch_size
        self.stream_seeds, self.train_dtype = stream_seeds, PRECISIONS[precision]
        self.train_batches = None

    def setup(self, stage: str) -> None:
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        s = self.splits
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            setattr(s, name, getattr(s, name).to(device))
        if self.train_batches is None:
            x = s.x_train.to(self.train_dtype)  # evaluation and callbacks keep reading float32 splits
            self.train_batches = StreamBatches(x, s.y_train, self.batch_size, self.stream_seeds)

    def eval_batches(self, split: str) -> EvalBatches:
        return EvalBatches(getattr(self.splits, f"x_{split}"), getattr(self.splits, f"y_{split}"), self.eval_batch_size)

    def train_dataloader(self):
        return self.train_batches

    def val_dataloader(self):
        return self.eval_batches("val") if len(self.splits.x_val) else []

    def test_dataloader(self):
        return [self.eval_batches(split) for split in self.EVAL_SETS]
