"""Per-replica results: records, the run's `results.jsonl`, and the resumable results store.

The store holds one JSON file per finished replica, named by a hash of the replica's experiment config
(OpenLTH's idea): rerunning a sweep skips what is there, a killed run loses only its unfinished replicas, and
a replica can never be recorded twice or half.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path

# Settings that change where, how or under which preset a run is done, not its outcome.
NOT_IN_KEY = ("experiment", "logger", "data_dir", "cache_dir", "results_dir", "resume", "accelerator", "eval_batch_size",
              "save_model", "export", "cuda_graph")  # fmt: skip


def replica_config(config: dict, dataset: str, seed: int, ratio: float) -> dict:
    """The resolved config of one replica: the population's config with its own dataset, seed and ratio."""
    return {**config, "dataset": {**config["dataset"], "name": dataset}, "seeds": [seed], "ratio": ratio}


def experiment_key(config: dict, dataset: str, seed: int, ratio: float, source: str) -> str:
    """Names the experiment a replica is: its config without run settings, with the data source it used."""
    cfg = {k: v for k, v in replica_config(config, dataset, seed, ratio).items() if k not in NOT_IN_KEY}
    cfg["dataset"] = {**cfg["dataset"], "source": source}
    return config_key(cfg)


def config_key(config: dict) -> str:
    """Hash naming an experiment by its hyperparameters (stable across key order)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def write_atomic(path: Path, text: str) -> None:
    """Write all of `text` or nothing: a crash never leaves a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_jsonl(path: Path, records: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


class ResultStore:
    """A folder of `<key>.json` files, one per finished replica."""

    def __init__(self, root):
        self.root = Path(root).expanduser()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> dict:
        return json.loads(self.path(key).read_text())

    def put(self, record: dict) -> None:
        write_atomic(self.path(record["key"]), json.dumps(record, sort_keys=True))

    def records(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*.json"))]


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
