"""The original Larochelle et al. 2007 `.amat` zips, for users who have them.

Each row is 784 floats in [0, 1] then the label; the 12,000-row file is the authors' train+valid set and
the 50,000-row file their test set. The two background sets are stored transposed relative to MNIST.
"""
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError, check_digest
from .cache import load_cached, save_atomic
from .mnist import DIGITS
from .splits import Contents

CONTENTS = Contents(DIGITS, official=(12000, 50000))  # train on the 12,000-row file, test on the 50,000-row one


@dataclass(frozen=True)
class AmatZip:
    filename: str
    sha1: str
    small: str  # the 12,000-row member
    large: str  # the 50,000-row member
    transposed: bool


ORIGINALS = {
    "mnist_basic": AmatZip(
        "mnist.zip", "14ac2e9135705499b80bf7efac981377940150c8", "mnist_train.amat", "mnist_test.amat", False
    ),
    "mnist_rot": AmatZip(
        "mnist_rotation_new.zip",
        "e67f72fa42029f62fd8eb92b0638c1b9761c9a63",
        "mnist_all_rotation_normalized_float_train_valid.amat",
        "mnist_all_rotation_normalized_float_test.amat",
        False,
    ),
    "mnist_back_image": AmatZip(
        "mnist_background_images.zip",
        "fb6fce9ed6372e0068ff7cb3e7b9e78dbda7ceae",
        "mnist_background_images_train.amat",
        "mnist_background_images_test.amat",
        True,
    ),
    "mnist_back_rand": AmatZip(
        "mnist_background_random.zip",
        "75e11ec966459c1162979e78ab4e21f9ab7fb5cd",
        "mnist_background_random_train.amat",
        "mnist_background_random_test.amat",
        True,
    ),
}


def read_amat(f, transposed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse an amat stream into float32 images (N, side, side), upright, and uint8 labels."""
    rows = np.loadtxt(f, dtype=np.float32, ndmin=2)
    n = DIGITS.features
    if rows.shape[1] != n + 1:
        raise UserError(f"amat rows must hold {n} pixels and a label, found {rows.shape[1]} values")
    x = rows[:, :n].reshape(-1, DIGITS.side, DIGITS.side)
    return (x.transpose(0, 2, 1) if transposed else x).copy(), rows[:, n].astype(np.uint8)


def load_original(name: str, data_dir: Path, cache_dir: Path, spec: AmatZip | None = None) -> dict:
    """Arrays x_small, y_small, x_large, y_large of one variant's zip; parsed once, then cached as .npy."""
    spec = spec or ORIGINALS[name]
    path = data_dir / spec.filename
    check_digest(path, "sha1", spec.sha1)
    cached = cache_dir / f"{name}-original-{spec.sha1[:12]}.npz"
    arrays = load_cached(cached)
    if arrays is not None:
        return arrays
    arrays = {}
    with zipfile.ZipFile(path) as z:
        for part, member in (("small", spec.small), ("large", spec.large)):
            with z.open(member) as f:
                arrays[f"x_{part}"], arrays[f"y_{part}"] = read_amat(f, spec.transposed)
    save_atomic(cached, arrays)
    return arrays
