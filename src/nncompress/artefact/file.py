"""One artefact = one safetensors file: the tensors, and one metadata entry holding the config and a sha256 of both.

Everything needed to run the model is in the file, so it can be copied alone. A file is data from elsewhere: every
read checks the digest (over the tensors and the config), the config against `schema`, and the tensors' names,
dtypes and values; `formats` then checks the shapes the config implies. A damaged, edited or foreign file fails
with one line, not a traceback. The digest is a checksum, not a signature: it catches damage and hand edits, and
a file forged with a recomputed digest is still held to the schema and to finite weights.

The one entry is canonical JSON (sorted keys, compact, ASCII), so two exports of a replica are the same bytes. A
coded file (`formats.coded`: as small as the information) writes it packed instead: raw DEFLATE (zlib), then
base85, whose alphabet needs no JSON escapes; on a 2 KB file that is a quarter of its bytes.
"""
import base64
import hashlib
import json
import re
import zlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from ..atomic import atomic_path
from ..errors import UserError
from . import schema

ENTRY, DIGEST = "nncompress", "sha256"  # the metadata entry, {"config": ..., DIGEST: ...}; files before it: two entries
PACKED = "nncompress.z85"  # the entry packed (a coded file's)
MAX_ENTRY = 1 << 20  # bytes a packed entry may unpack to: a config is a few hundred
FLOATS = (torch.float32, torch.float16)  # what export writes; `*_indices` are integers, `*.coded` bytes, every
INTEGERS = (torch.uint8, torch.int16, torch.int32, torch.int64)  # other tensor a float
BYTES = (torch.uint8,)  # a coded file's stream (`formats.coded`)


def canonical(value) -> str:
    """The one JSON text of `value`: what is hashed and written, so equal configs are equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(tensors: dict[str, torch.Tensor], config: dict) -> str:
    """sha256 over the config's canonical JSON (length-prefixed), then the tensors as `tensor_digest` hashes them."""
    text = canonical(config).encode()
    return hash_tensors(hashlib.sha256(b"%d:" % len(text) + text), tensors).hexdigest()


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """The digest of files written before the config was hashed: the tensors alone."""
    return hash_tensors(hashlib.sha256(), tensors).hexdigest()


def hash_tensors(h, tensors: dict[str, torch.Tensor]):
    """`h` updated with the tensors' names, dtypes, shapes and bytes, in name order."""
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h


def write(path: Path, tensors: dict[str, torch.Tensor], config: dict, packed: bool = False) -> int:
    """Write the artefact, its metadata entry `packed` or not; returns its size in bytes. Refuses (one line) what
    `read` would refuse."""
    path = Path(path)
    data = serialize(path, tensors, config, packed)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path.stat().st_size


def smallest(path: Path, candidates: list[tuple[dict[str, torch.Tensor], dict, bool]]) -> tuple[dict, dict, bool]:
    """The (tensors, config, packed) among `candidates` (the same replica in several formats) whose file is the
    smallest; the first of equals."""
    return min(candidates, key=lambda candidate: len(serialize(Path(path), *candidate)))


def serialize(path: Path, tensors: dict[str, torch.Tensor], config: dict, packed: bool = False) -> bytes:
    """The file's bytes, or a one-line UserError for what `read` would refuse."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    schema.check(path, config)
    check_values(path, tensors)
    entry = canonical({"config": config, DIGEST: digest(tensors, config)})
    return save(tensors, metadata={PACKED: pack(entry)} if packed else {ENTRY: entry})


def pack(entry: str) -> str:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw: the digest inside checks it, no need for zlib's
    return base64.b85encode(deflate.compress(entry.encode()) + deflate.flush()).decode()


def unpack(path: Path, packed: str) -> str:
    """A packed entry's text, or a one-line UserError (not base85, not DEFLATE, or unpacking to over MAX_ENTRY)."""
    inflate = zlib.decompressobj(-15)
    try:
        text = inflate.decompress(base64.b85decode(packed), MAX_ENTRY)
    except (ValueError, zlib.error) as e:  # (binascii.Error is a ValueError)
        raise UserError(f"{path}: its '{PACKED}' metadata is not a packed entry ({str(e).splitlines()[0]})") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise UserError(f"{path}: its '{PACKED}' metadata does not unpack to at most {MAX_ENTRY} bytes of JSON")
    return text.decode("ascii", errors="replace")


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config) of a verified artefact, or a one-line UserError.

    Files written before the digest covered the config (two entries: `nncompress`, the config, and `sha256`, of
    the tensors alone) still load: their tensors are verified, their config is checked against the schema, but
    nothing tells an edited config from the one they were written with. Re-export them to have that too.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no artefact at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a readable safetensors file (truncated or foreign): {str(e).splitlines()[0]}")
    if ENTRY not in metadata and PACKED not in metadata:
        raise UserError(f"{path} is a safetensors file but not an nncompress artefact (no '{ENTRY}' metadata)")
    entry = parse(path, metadata[ENTRY] if ENTRY in metadata else unpack(path, metadata[PACKED]))
    if DIGEST in metadata:  # the older layout
        config, expected, actual = entry, metadata[DIGEST], tensor_digest(tensors)
    elif isinstance(entry, dict) and entry.keys() == {"config", DIGEST}:
        config, expected = entry["config"], entry[DIGEST]
        actual = digest(tensors, config)
    else:
        raise UserError(f"{path}: its '{ENTRY}' metadata is not an object of 'config' and '{DIGEST}'")
    if actual != expected:
        raise UserError(f"checksum mismatch for {path}: its tensors or config are not the ones it was written with")
    schema.check(path, config)
    check_values(path, tensors)
    return tensors, config


def parse(path: Path, text: str):
    """JSON, or a one-line UserError (NaN and Infinity are not JSON, and no config holds them)."""
    try:
        return json.loads(text, parse_constant=not_json)
    except ValueError as e:  # (JSONDecodeError is one)
        raise UserError(f"{path}: its '{ENTRY}' metadata is not valid JSON ({str(e).splitlines()[0]})") from None


def not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def check_values(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """One-line error unless every tensor has a plain name, the dtype export writes, and (floats) finite values."""
    for name, t in sorted(tensors.items()):
        if not re.fullmatch(r"[A-Za-z0-9_.]+", name):
            raise UserError(f"{path}: holds a tensor with a malformed name {name[:40]!r}")
        allowed = INTEGERS if name.endswith("_indices") else BYTES if name == "coded" else FLOATS
        if t.dtype not in allowed:
            raise UserError(f"{path}: tensor {name} is {t.dtype}, expected {' or '.join(map(str, allowed))}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise UserError(f"{path}: tensor {name} holds non-finite values (NaN or infinity)")


def check_shapes(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, tuple]) -> None:
    """One-line error unless the file holds exactly the tensors its config implies, with those shapes (a length of
    None: any, as a coded stream's)."""
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    got |= {k: expected[k] for k, shape in got.items() if k in expected and len(shape) == len(expected[k])
            and all(n is None or n == m for n, m in zip(expected[k], shape))}  # fmt: skip
    if got != {k: tuple(v) for k, v in expected.items()}:
        wrong = sorted(k for k in got.keys() | expected.keys() if got.get(k) != tuple(expected.get(k, ())))
        raise UserError(f"{path}: tensors do not match its config ({', '.join(wrong)}: "
                        f"{', '.join(f'{got.get(k)} vs {expected.get(k)}' for k in wrong)})")
