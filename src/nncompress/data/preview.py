"""`make data-preview`: a PNG grid of training samples per dataset (8 rows x 10 columns, one column per digit).

    python -m nncompress.data.preview [--out previews] [--datasets mnist mnist_rot ...]
"""
import argparse
import os
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from ..console import setup
from ..errors import exit_on_user_error
from ..resources import CONF_DIR
from .catalog import CONTENTS, DATASETS
from .location import data_dir
from .datasets import load_dataset
from .splits import Images


def sample_grid(x: np.ndarray, y: np.ndarray, images: Images, rows: int = 8, scale: int = 3) -> np.ndarray:
    """uint8 image: column d holds the first `rows` training images of class d, 2-pixel gaps."""
    side, tile = images.side, images.side + 2
    tiles = np.zeros((rows * tile, images.classes * tile), dtype=np.uint8)
    for d in range(images.classes):
        for r, i in enumerate(np.flatnonzero(y == d)[:rows]):
            at = (slice(r * tile + 1, r * tile + 1 + side), slice(d * tile + 1, d * tile + 1 + side))
            tiles[at] = np.rint(x[i].reshape(side, side) * 255)
    return tiles.repeat(scale, 0).repeat(scale, 1)


def main():
    from skimage.io import imsave

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="previews")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--data-dir", default=data_dir(), help="default: as a run finds it (docs/data.md)")
    parser.add_argument("--cache-dir", default=os.environ.get("NNCOMPRESS_CACHE_DIR", "~/.cache/nncompress"))
    args = parser.parse_args()
    setup()  # the data's own lines (a download) on the console
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = OmegaConf.load(CONF_DIR / "dataset" / "mnist.yaml")
    for name in args.datasets:
        with exit_on_user_error():
            s = load_dataset(OmegaConf.merge(base, {"name": name}), args.data_dir, args.cache_dir)
        path = out / f"{name}.png"
        imsave(path, sample_grid(s.x_train.numpy(), s.y_train.numpy(), CONTENTS[name].images), check_contrast=False)
        print(f"{path}: {name} ({s.source}), train {len(s.x_train)}, test {len(s.x_test)}")


if __name__ == "__main__":
    main()
