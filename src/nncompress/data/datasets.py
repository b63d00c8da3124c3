"""Dataset registry: which files or recipe give each dataset, its splits, and where it came from."""
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from ..errors import UserError
from . import download, larochelle, variants
from .cache import load_cached, save_atomic
from ..typed import Typed, bounded
from .catalog import CONTENTS, DATASETS
from .mnist import NPZ_SHA256, load_mnist
from .splits import SPLITS, Contents


@dataclass
class Dataset(Typed):
    """Which images a replica trains and is tested on (`conf/dataset/<name>.yaml`; a run's `dataset.name` may list
    several: each replica gets this node with its own name)."""

    node: ClassVar[str] = "dataset"
    name: Literal[DATASETS] = "mnist"
    split: Literal[tuple(SPLITS)] = "paper"
    source: Literal["auto", "original", "regenerated"] = "auto"  # variants only; auto: original if present
    regen_seed: int = 0
    val_size: int = bounded(0, low=0)
    train_size: int | None = bounded(None, low=1)  # None: the whole split
    test_size: int | None = bounded(None, low=1)

    def check(self) -> None:
        """Sizes within the split: a larger one would train or test on fewer images than the run records."""
        train, test = self.contents.full_sizes(self.split)
        where = f"{self.name}'s {self.split} split"
        if self.val_size >= train:
            raise UserError(f"dataset.val_size must be less than {train} (the training images of {where}), "
                            f"got {self.val_size}")
        left = train - self.val_size
        if self.train_size is not None and self.train_size > left:
            held = f", less val_size={self.val_size}" if self.val_size else ""
            raise UserError(f"dataset.train_size must be at most {left} (the training images of {where}{held}), "
                            f"got {self.train_size}")
        if self.test_size is not None and self.test_size > test:
            raise UserError(f"dataset.test_size must be at most {test} (the test images of {where}), got {self.test_size}")

    @property
    def contents(self) -> Contents:
        return CONTENTS[self.name]

    def train_images(self) -> int:
        """How many images the run trains on."""
        return self.contents.split_sizes(self.split, self.train_size, self.test_size, self.val_size)[0]


@dataclass
class Splits:
    """Flattened float32 images in [0, 1] and int64 labels, already split."""

    name: str
    source: str  # "original" or "regenerated"
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def standardize_(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale every split by the training set's pixel mean and std; returns them (0-d float32 tensors)."""
        mean, std = self.x_train.mean(), self.x_train.std()
        for name in ("x_train", "x_val", "x_test"):
            setattr(self, name, (getattr(self, name) - mean) / std)
        return mean, std


def paper_pool(m: dict) -> tuple[np.ndarray, ...]:
    """MNIST cut the paper's way: the first 50,000 training images to train, and 12,000 to test: the
    official test set plus training images 50,000..51,999 (digits never seen in training)."""
    x_test = np.concatenate([m["x_test"], m["x_train"][50000:52000]])
    y_test = np.concatenate([m["y_test"], m["y_train"][50000:52000]])
    return m["x_train"][:50000], m["y_train"][:50000], x_test, y_test


def regenerated(name: str, data_dir: Path, cache_dir: Path, seed: int) -> tuple[np.ndarray, ...]:
    """The paper pool passed through the variant recipe, generated once per (recipe, seed, MNIST) and cached."""
    path = cache_dir / f"{name}-recipe{variants.RECIPE_VERSION}-seed{seed}-{NPZ_SHA256[:12]}.npz"
    d = load_cached(path)
    if d is None:
        x_tr, y_tr, x_te, y_te = paper_pool(load_mnist(data_dir))
        x = variants.regenerate(name, np.concatenate([x_tr, x_te]), seed)
        d = {"x_train": x[: len(x_tr)], "y_train": y_tr, "x_test": x[len(x_tr) :], "y_test": y_te}
        save_atomic(path, d)
    return d["x_train"], d["y_train"], d["x_test"], d["y_test"]


def load_arrays(cfg, data_dir: Path, cache_dir: Path) -> tuple[str, tuple]:
    """(source, (x_train, y_train, x_test, y_test)) for the configured dataset and split."""
    name, split, source = cfg.name, cfg.split, cfg.source
    if name == "mnist":
        m = load_mnist(data_dir)
        arrays = paper_pool(m) if split == "paper" else (m["x_train"], m["y_train"], m["x_test"], m["y_test"])
        return "original", arrays
    spec = larochelle.ORIGINALS[name]
    have_original = (data_dir / spec.filename).exists()
    if source == "original" and not have_original:
        download.fetch(spec.filename, "sha1", spec.sha1, data_dir, download.larochelle_mirrors(),
                       f"{name}: source=original needs {spec.filename} in {data_dir}")  # fmt: skip
    if source == "original" or (source == "auto" and have_original):
        a = larochelle.load_original(name, data_dir, cache_dir)
        arrays = (a["x_large"], a["y_large"], a["x_small"], a["y_small"])
        source = "original"
    else:
        arrays, source = regenerated(name, data_dir, cache_dir, cfg.regen_seed), "regenerated"
    # The paper trains on the 50,000 set and tests on the 12,000 one; `official` keeps Larochelle's way round.
    return source, (arrays if split == "paper" else arrays[2:] + arrays[:2])


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(x)).flatten(1)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return x, torch.from_numpy(y.astype(np.int64))


def load_dataset(cfg: Dataset, data_dir: str | Path, cache_dir: str | Path) -> Splits:
    """Load, split and limit the dataset `cfg` (a Dataset, or a config node of one) describes."""
    if not isinstance(cfg, Dataset):
        cfg = Dataset(**{k: v for k, v in dict(cfg).items() if k != "_target_"})
    data_dir, cache_dir = Path(data_dir).expanduser(), Path(cache_dir).expanduser()
    if not data_dir.parent.is_dir():  # a misspelt path fails here; a new folder (data/ on a fresh clone) is made
        raise UserError(f"data_dir '{data_dir}' does not exist, nor its parent (set data_dir=... or NNCOMPRESS_DATA_DIR)")
    data_dir.mkdir(exist_ok=True)
    source, (x_tr, y_tr, x_te, y_te) = load_arrays(cfg, data_dir, cache_dir)
    val = cfg.val_size
    x_va, y_va = x_tr[len(x_tr) - val :], y_tr[len(y_tr) - val :]
    x_tr, y_tr = x_tr[: len(x_tr) - val], y_tr[: len(y_tr) - val]
    n_tr, n_te = cfg.train_size or len(x_tr), cfg.test_size or len(x_te)
    return Splits(
        cfg.name, source, *as_tensors(x_tr[:n_tr], y_tr[:n_tr]), *as_tensors(x_va, y_va), *as_tensors(x_te[:n_te], y_te[:n_te])
    )
