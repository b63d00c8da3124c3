"""Per-replica results: records, the run's `results.jsonl`, and the resumable results store.

The store holds one JSON file per finished replica, named by a hash of the replica's experiment config
(OpenLTH's idea): rerunning a sweep skips what is there, a killed run loses only its unfinished replicas, and
a replica can never be recorded twice or half.
"""
import hashlib
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .atomic import write_text

# Settings that change where, how or under which preset a run is done, not its outcome.
NOT_IN_KEY = ("experiment", "logger", "data_dir", "cache_dir", "results_dir", "resume", "accelerator", "eval_batch_size",
              "save_model", "export", "cuda_graph")  # fmt: skip


# Options added after results were stored, at the value every earlier run had: left out of the key at that value,
# so a key stored before the option existed still names the same experiment (OpenLTH's rule for defaults).
ADDED_OPTIONS = {("protocol", "pruning", "final"): "fixed"}


def without_added_defaults(config: dict) -> dict:
    config = json.loads(json.dumps(config))  # a deep copy
    for *parents, leaf in ADDED_OPTIONS:
        node = config
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) == ADDED_OPTIONS[(*parents, leaf)]:
            del node[leaf]
    return config


def replica_config(config: dict, dataset: str, seed: int, ratio: float) -> dict:
    """The resolved config of one replica: the population's config with its own dataset, seed and ratio."""
    return {**config, "dataset": {**config["dataset"], "name": dataset}, "seeds": [seed], "ratio": ratio}


def experiment_key(config: dict, dataset: str, seed: int, ratio: float, source: str) -> str:
    """Names the experiment a replica is: its config without run settings, with the data source it used."""
    cfg = {k: v for k, v in replica_config(config, dataset, seed, ratio).items() if k not in NOT_IN_KEY}
    cfg["dataset"] = {**cfg["dataset"], "source": source}
    return config_key(without_added_defaults(cfg))


def config_key(config: dict) -> str:
    """Hash naming an experiment by its hyperparameters (stable across key order)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def dumps(record: dict) -> str:
    """Standard JSON (NaN and infinities refused, never written)."""
    return json.dumps(record, sort_keys=True, allow_nan=False)


def write_jsonl(path: Path, records: list[dict]) -> None:
    write_text(path, "".join(dumps(r) + "\n" for r in records))


class ResultStore:
    """A folder of `<key>.json` files, one per finished replica.

    A file counts only when it parses and holds its own key; a damaged one (truncated, emptied, edited) is moved to
    `damaged/` with a warning, never deleted, and its replica counts as not done.
    """

    def __init__(self, root):
        self.root = Path(root).expanduser()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def read(self, path: Path) -> dict | None:
        """The record in `path`, or None when there is none or it is damaged (then set aside)."""
        try:
            record = json.loads(path.read_text())
            if isinstance(record, dict) and record.get("key") == path.stem:
                return record
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        damaged = self.root / "damaged" / path.name
        damaged.parent.mkdir(exist_ok=True)
        os.replace(path, damaged)
        print(f"warning: damaged results-store entry moved to {damaged}; its replica will be trained again", file=sys.stderr)
        return None

    @contextmanager
    def claims(self, keys: list[str]):
        """Claim `keys` for this process while the block runs (`claims/<key>.claim` holding pid and host, created
        exclusively); yields those another live run holds, key -> who. A claim whose owner is gone (this host, no
        such process) or older than CLAIM_HOURS is taken over; this process's claims are released on the way out."""
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        mine, busy = [], {}  # keys
        for key in keys:
            path = self.root / "claims" / f"{key}.claim"
            path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    holder = claim_holder(path, me)
                    if holder is None:  # stale
                        path.unlink(missing_ok=True)
                        continue
                    busy[key] = holder
                    break
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
                mine.append(key)
                break
        try:
            yield busy
        finally:
            self.release(mine)

    def release(self, keys) -> None:
        """Drop this process's claims on `keys` (never another's that took one over)."""
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for key in keys:
            path = self.root / "claims" / f"{key}.claim"
            try:
                if json.loads(path.read_text()) == me:
                    path.unlink()
            except (FileNotFoundError, ValueError):
                pass

    def __contains__(self, key: str) -> bool:
        return self.read(self.path(key)) is not None

    def get(self, key: str) -> dict:
        return self.read(self.path(key))

    def put(self, record: dict) -> None:
        write_text(self.path(record["key"]), dumps(record))

    def records(self) -> list[dict]:
        return [r for r in map(self.read, sorted(self.root.glob("*.json"))) if r is not None]


CLAIM_HOURS = 48  # a claim from another host older than this is taken to be a crashed run's


def claim_holder(path: Path, me: dict) -> str | None:
    """Who holds the claim in `path` ("pid P on HOST"), or None when it is stale."""
    try:
        owner = json.loads(path.read_text())
        age_h = (time.time() - path.stat().st_mtime) / 3600
    except FileNotFoundError:
        return None
    except ValueError:  # being written this instant
        return "a run starting now"
    if owner["host"] == me["host"]:
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
    elif age_h > CLAIM_HOURS:
        return None
    return f"pid {owner['pid']} on {owner['host']}"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def format_table(records: list[dict]) -> str:
    """One line per replica: seed, ratio, accuracies, non-zero weights and parameters (real weights + biases)."""
    mixed = len({r["dataset"] for r in records}) > 1
    width = 24 + mixed * max(len(r["dataset"]) + 1 for r in records)
    lines = [f"{'replica':<{width}} {'test acc':>8} {'train acc':>9} {'non-zero weights':>18} {'parameters':>10}"]
    for r in records:
        name = (f"{r['dataset']} " if mixed else "") + f"seed={r['seed']} ratio={r['ratio']:g}"
        kept = f"{r['nonzero_weights']}/{r['total_weights']}"
        lines.append(f"{name:<{width}} {r['test_acc']:>8.4f} {r['train_acc']:>9.4f} {kept:>18} {r['parameters']:>10}")
    return "\n".join(lines)
