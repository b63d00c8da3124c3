"""`make data-preview`: a PNG grid of training samples per dataset (8 rows x 10 columns, one column per digit).

    python -m nncompress.data.preview [--out previews] [--datasets mnist mnist_rot ...]
"""
import argparse
import os
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from ..errors import exit_on_user_error
from .datasets import DATASETS, load_dataset


def sample_grid(x: np.ndarray, y: np.ndarray, rows: int = 8, scale: int = 3) -> np.ndarray:
    """uint8 image: column d holds the first `rows` training images of digit d, 2-pixel gaps."""
    tiles = np.zeros((rows * 30, 10 * 30), dtype=np.uint8)
    for d in range(10):
        for r, i in enumerate(np.flatnonzero(y == d)[:rows]):
            tiles[r * 30 + 1 : r * 30 + 29, d * 30 + 1 : d * 30 + 29] = np.rint(x[i].reshape(28, 28) * 255)
    return tiles.repeat(scale, 0).repeat(scale, 1)


def main():
    from skimage.io import imsave

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="previews")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--data-dir", default=os.environ.get("NNCOMPRESS_DATA_DIR", "data"))
    parser.add_argument("--cache-dir", default=os.environ.get("NNCOMPRESS_CACHE_DIR", "~/.cache/nncompress"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = OmegaConf.load(Path(__file__).resolve().parents[3] / "conf" / "dataset" / "mnist.yaml")
    for name in args.datasets:
        with exit_on_user_error():
            s = load_dataset(OmegaConf.merge(base, {"name": name}), args.data_dir, args.cache_dir)
        path = out / f"{name}.png"
        imsave(path, sample_grid(s.x_train.numpy(), s.y_train.numpy()), check_contrast=False)
        print(f"{path}: {name} ({s.source}), train {len(s.x_train)}, test {len(s.x_test)}")


if __name__ == "__main__":
    main()
