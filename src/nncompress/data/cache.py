"""Cached arrays: atomic writes, safe when parallel sweep jobs race to create the same file, and reads that
drop a damaged file so it is rebuilt instead of failing every run."""
import logging
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

log = logging.getLogger(__name__)


def save_atomic(path: Path, arrays: dict) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:  # np.savez appends .npz to a name without it
        np.savez(tmp, **arrays)


def load_cached(path: Path) -> dict | None:
    """The arrays cached in `path`; None when it is absent or unreadable (then removed, to be rebuilt)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as d:
            return dict(d)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        log.warning(f"warning: unreadable cache file {path} ({type(err).__name__}) removed; rebuilding it")
        path.unlink(missing_ok=True)
        return None
