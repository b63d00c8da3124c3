"""Measure an artefact: one JSON line with its test accuracy, bytes on disk, parameters, and CPU inference latency
(median of repeated calls, in ms) at batch 1 and batch 1,000.

    python -m nncompress.artefact PATH [--dataset mnist] [--data-dir DIR]

The test split is the one the replica was tested on (its dataset config), read from `--data-dir`
(default: the folder a run finds, see docs/data.md); `--dataset` tests it on another dataset instead.
"""
import argparse
import dataclasses
import json
import os
from pathlib import Path

import torch

from ..data.datasets import load_dataset
from ..data.location import data_dir
from ..errors import exit_on_user_error
from . import file, formats, schema
from .latency import batch_of, median_ms

BATCHES = (1, 1000)


def parameters(tensors: dict[str, torch.Tensor], config: dict) -> int:
    """Stored weight values and biases (the input standardization is not a parameter); a coded file's as its plain
    format stores them (the non-zero weights, or the buckets)."""
    fmt = config["format"]
    if fmt.startswith("coded-"):
        return sum(config["buckets" if fmt == "coded-hashed-mlp" else "nonzero"]) + sum(config["architecture"]["sizes"][1:])
    return sum(t.numel() for name, t in tensors.items() if t.is_floating_point() and not name.startswith("input."))


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch: int = 4000) -> float:
    hits = sum(int((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return hits / len(x)


def measure(path: Path, dataset: str | None, data_dir: str, cache_dir: str) -> dict:
    tensors, config = file.read(path)
    model = formats.module(path, tensors, config).eval()
    tested_on = schema.dataset(config["dataset"])  # built as written: no OmegaConf, so nothing in it is resolved
    split = load_dataset(dataclasses.replace(tested_on, name=dataset) if dataset else tested_on, data_dir, cache_dir)
    return {
        "path": str(path), "format": config["format"], "dataset": split.name, "test_acc": accuracy(model, split.x_test, split.y_test),
        "bytes": path.stat().st_size, "parameters": parameters(tensors, config),
        **{f"latency_ms_batch{b}": median_ms(model, batch_of(split.x_test, b)) for b in BATCHES},
        "threads": torch.get_num_threads(), "key": config["key"],
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--dataset", help="test on this dataset (default: the one the replica was tested on)")
    parser.add_argument("--data-dir", default=data_dir(), help="default: as a run finds it (docs/data.md)")
    parser.add_argument("--cache-dir", default=os.environ.get("NNCOMPRESS_CACHE_DIR", "~/.cache/nncompress"))
    args = parser.parse_args()
    with exit_on_user_error():
        print(json.dumps(measure(args.path, args.dataset, args.data_dir, args.cache_dir)))


if __name__ == "__main__":
    main()
