"""What a dataset holds: its images, and how many of them each of its splits gives.

Each source module says its own (`mnist.CONTENTS`, `larochelle.CONTENTS`); `catalog.CONTENTS` says which each
dataset has.
"""
from dataclasses import dataclass

SPLITS = {"paper": "50,000 train / 12,000 test", "official": "the source's own train / test"}
PAPER_SIZES = (50000, 12000)  # (train, test): the paper's cut of every dataset (see datasets.paper_pool)


@dataclass(frozen=True)
class Images:
    """What a model reads and predicts: side x side grey images, each of one of `classes` classes."""

    side: int
    classes: int

    @property
    def features(self) -> int:
        return self.side * self.side


@dataclass(frozen=True)
class Contents:
    """A dataset's images, and the (train, test) image counts of its source's own split (`split=official`)."""

    images: Images
    official: tuple[int, int]

    def full_sizes(self, split: str) -> tuple[int, int]:
        """(train, test) image counts under `split`, before the size options of `dataset`."""
        return PAPER_SIZES if split == "paper" else self.official

    def split_sizes(self, split: str, train_size=None, test_size=None, val_size=None) -> tuple[int, int, int]:
        """(train, validation, test) image counts under `split` and the size options of `dataset` (a run refuses
        sizes beyond the split; records from before that are clamped to it)."""
        full_train, full_test = self.full_sizes(split)
        val = val_size or 0
        return min(train_size or full_train, full_train - val), val, min(test_size or full_test, full_test)
