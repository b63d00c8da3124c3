"""Where the data lives when no `data_dir` is given: one rule for `python src/train.py`, `make` and the tools."""
import os
from pathlib import Path

ENV = "NNCOMPRESS_DATA_DIR"


def data_dir(base: Path | None = None) -> str:
    """`NNCOMPRESS_DATA_DIR` when set; else `data/` if it holds mnist.npz; else `../shared/data` if that exists (where
    a workplace keeps the real MNIST beside its checkouts); else `data/` (MNIST is then downloaded into it). Relative
    paths are from `base`, the working directory by default."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    base = Path(base or Path.cwd()).absolute()
    own, shared = base / "data", (base.parent / "shared" / "data")
    if (own / "mnist.npz").is_file() or not shared.is_dir():
        return str(own)
    return str(shared)

