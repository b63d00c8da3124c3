"""Reads W&B offline runs back (test helper): the run records and logged keys of a `run-<id>.wandb` file.

The file is W&B's transaction log: a 7-byte header, then LevelDB-log blocks of 32 KiB holding chunks
(crc32 u32, length u16, type u8: 1 whole record, 2 first, 3 middle, 4 last) of protobuf `Record`s.
"""
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768


def records(path: Path):
    data, pos, pending = Path(path).read_bytes(), 7, b""
    assert data[:4] == b":W&B", path
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # block trailer: padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def offline_run(run_dir: Path) -> dict:
    """name, group, job_type, tags, every logged key and the artifacts (name -> (type, files)) of one offline run."""
    (log,) = Path(run_dir).glob("run-*.wandb")
    run, keys, artifacts = {}, set(), {}
    for r in records(log):
        if r.WhichOneof("record_type") == "run":
            run = {"name": r.run.display_name, "group": r.run.run_group, "job_type": r.run.job_type, "tags": set(r.run.tags)}
        elif r.WhichOneof("record_type") == "history":
            keys |= {item.key or "/".join(item.nested_key) for item in r.history.item}
        elif r.WhichOneof("record_type") == "artifact":
            artifacts[r.artifact.name] = (r.artifact.type, len(r.artifact.manifest.contents))
    return {**run, "keys": keys, "artifacts": artifacts}
