"""One artefact = one safetensors file: the tensors, the config as JSON metadata, and a sha256 of the tensors.

Everything needed to run the model is in the file, so it can be copied alone; the checksum and the shapes the
config implies are checked on every read, so a damaged or foreign file fails with one line, not a traceback.
"""
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..atomic import atomic_path
from ..errors import UserError

CONFIG, DIGEST = "nncompress", "sha256"  # metadata entries


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write(path: Path, tensors: dict[str, torch.Tensor], config: dict) -> int:
    """Write the artefact; returns its size in bytes."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={CONFIG: json.dumps(config, sort_keys=True), DIGEST: digest(tensors)})
    return path.stat().st_size


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config) of a verified artefact, or a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no artefact at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable safetensors file (truncated or foreign): {str(e).splitlines()[0]}")
    if CONFIG not in metadata or DIGEST not in metadata:
        raise UserError(f"{path} is a safetensors file but not an nncompress artefact (no '{CONFIG}' metadata)")
    if digest(tensors) != metadata[DIGEST]:
        raise UserError(f"checksum mismatch for {path}: its tensors are not the ones it was written with")
    return tensors, json.loads(metadata[CONFIG])


def check_shapes(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, tuple]) -> None:
    """One-line error unless the file holds exactly the tensors its config implies, with those shapes."""
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != {k: tuple(v) for k, v in expected.items()}:
        wrong = sorted(k for k in got.keys() | expected.keys() if got.get(k) != tuple(expected.get(k, ())))
        raise UserError(f"{path}: tensors do not match its config ({', '.join(wrong)}: "
                        f"{', '.join(f'{got.get(k)} vs {expected.get(k)}' for k in wrong)})")
