"""Compressed replicas as standalone files (safetensors), and plain modules to run them.

    model = nncompress.artefact.load("multirun/results/artefacts/<key>.safetensors")   # a torch.nn.Module
    logits = model(images)                                                               # (B, 784) raw pixels in [0, 1]

See `formats` for what each family stores, `export` for writing them, `python -m nncompress.artefact PATH` to
measure one (accuracy, bytes, parameters, latency).
"""
from pathlib import Path

import torch

from . import file, formats


def load(path) -> torch.nn.Module:
    """The inference module of the artefact at `path` (all of it verified, see `file.read`; UserError if bad)."""
    return formats.module(Path(path), *file.read(path)).eval()
