"""Per-replica result records, written atomically as `results.jsonl` in the run directory."""
import hashlib
import json
import os
import tempfile
from pathlib import Path

from .population import Replica


def replica_config(config: dict, replica: Replica) -> dict:
    """The resolved config of one replica: the population's config with its own seed and ratio."""
    return {**config, "seeds": [replica.seed], "ratio": replica.ratio}


def config_key(config: dict) -> str:
    """Hash naming an experiment by its hyperparameters (stable across key order)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Write all records or none: a crash never leaves a partial results file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def format_table(records: list[dict]) -> str:
    """One line per replica: seed, ratio, accuracies, non-zero weights and parameters (real weights + biases)."""
    lines = [f"{'replica':<24} {'test acc':>8} {'train acc':>9} {'non-zero weights':>18} {'parameters':>10}"]
    for r in records:
        name = f"seed={r['seed']} ratio={r['ratio']:g}"
        kept = f"{r['nonzero_weights']}/{r['total_weights']}"
        lines.append(f"{name:<24} {r['test_acc']:>8.4f} {r['train_acc']:>9.4f} {kept:>18} {r['parameters']:>10}")
    return "\n".join(lines)
