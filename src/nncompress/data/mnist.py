"""The real MNIST: the checked `mnist.npz` archive, or the official idx files with their published md5s."""
import gzip
from pathlib import Path

import numpy as np

from ..errors import UserError, check_digest
from . import download
from .splits import Contents, Images

DIGITS = Images(side=28, classes=10)  # MNIST's handwritten digits, and so those of every variant of it
CONTENTS = Contents(DIGITS, official=(60000, 10000))

NPZ_NAME = "mnist.npz"
NPZ_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"

# Published md5s of the official files, gzipped (as distributed) and uncompressed.
IDX_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
IDX_PARTS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (gzipped or not): magic 2051 gives (N, rows, cols) images, 2049 gives (N,) labels."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = {2049: 1, 2051: 3}.get(magic)
    if ndim is None:
        raise UserError(f"{path} is not an idx file (magic {magic}, expected 2049 or 2051)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: header says {shape}, found {data.size} bytes of data")
    return data.reshape(shape)


def load_idx_dir(data_dir: Path, md5: dict = IDX_MD5) -> dict:
    """Load the four official idx files (`.gz` preferred) from `data_dir`, each checked against `md5`."""
    arrays = {}
    for key, stem in IDX_PARTS.items():
        path = next((data_dir / n for n in (stem + ".gz", stem) if (data_dir / n).exists()), None)
        if path is None:
            raise UserError(f"MNIST not found in {data_dir}: need {NPZ_NAME} or {stem}.gz")
        check_digest(path, "md5", md5[path.name])
        arrays[key] = read_idx(path)
    return arrays


def load_mnist(data_dir: Path) -> dict:
    """MNIST as uint8 arrays x_train (60000, 28, 28), y_train, x_test (10000, 28, 28), y_test; the idx files
    are downloaded into `data_dir` when neither they nor the npz are there."""
    npz = data_dir / NPZ_NAME
    if not npz.exists():
        for stem in IDX_PARTS.values():
            if not any((data_dir / n).exists() for n in (stem + ".gz", stem)):
                missing = f"MNIST not found: put {NPZ_NAME} or the four idx files ({stem}.gz, ...) in {data_dir}"
                download.fetch(stem + ".gz", "md5", IDX_MD5[stem + ".gz"], data_dir, download.mnist_mirrors(), missing)
        return load_idx_dir(data_dir)
    check_digest(npz, "sha256", NPZ_SHA256)
    with np.load(npz) as d:
        return {k: d[k] for k in IDX_PARTS}
