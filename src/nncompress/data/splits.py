"""The splits a dataset can be cut into, and how many images each part then holds."""

SPLITS = {"paper": "50,000 train / 12,000 test", "official": "the source's own train / test"}


def full_sizes(name: str, split: str) -> tuple[int, int]:
    """(train, test) image counts of `name` under `split`, before the size options of `dataset`."""
    if split == "paper":
        return 50000, 12000
    # MNIST's own 60k/10k; Larochelle's sets train on their 12,000-image file, test on the 50,000 one
    return (60000, 10000) if name == "mnist" else (12000, 50000)


def split_sizes(name: str, split: str, train_size=None, test_size=None, val_size=None) -> tuple[int, int, int]:
    """(train, validation, test) image counts of `name` under `split` and the size options of `dataset` (a run
    refuses sizes beyond the split; records from before that are clamped to it)."""
    full_train, full_test = full_sizes(name, split)
    val = val_size or 0
    return min(train_size or full_train, full_train - val), val, min(test_size or full_test, full_test)
