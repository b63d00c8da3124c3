"""Write finished replicas as artefacts: from a population in memory (`train.py export=true`), or from the
`model.pt` of runs that saved their model (`save_model=true`), found from a run directory or the results store.

    python -m nncompress.artefact.export RUN_DIR_OR_STORE [--out DIR] [--values float16]

Writes `<out>/<key>.safetensors` (default out: `<run_dir>/artefacts`); from the store, each record gains its
`artefact_bytes`, and runs without a saved model are skipped.
"""
import argparse
import subprocess
from functools import cache
from pathlib import Path

import torch
from omegaconf import OmegaConf

from .. import results
from ..data.datasets import load_dataset
from ..errors import UserError, exit_on_user_error
from ..population import Population
from ..typed import construct
from . import file

REPO = Path(__file__).resolve().parents[3]
IMAGE_PIXELS = 28 * 28  # every dataset is MNIST-shaped


@cache
def commit() -> str:
    """The checked-out commit of this code, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def replica_tensors(model, r: int, dense: bool = False, values: torch.dtype = torch.float32) -> tuple[dict, dict]:
    """(tensors, format-specific config) of replica `r` of a population model; `dense` writes a pruned MLP dense."""
    if hasattr(model, "conv"):
        c = model.channels
        tensors = {"conv.weight": model.conv.weight[r * c : (r + 1) * c], "conv.bias": model.conv.bias[r * c : (r + 1) * c],
                   "head.weight": model.head.replica_weight()[r].t(), "head.bias": model.head.replica_bias()[r]}  # fmt: skip
        return tensors, {"format": "convnet"}
    tensors = {f"layers.{i}.bias": layer.replica_bias()[r] for i, layer in enumerate(model.layers)}
    if hasattr(model.layers[0], "buckets"):
        for i, layer in enumerate(model.layers):
            tensors[f"layers.{i}.buckets"] = layer.buckets.split(layer.bucket_counts)[r]
        seeds = {layer.hash_seeds[r] for layer in model.layers}  # one per replica (layers differ by their index)
        return tensors, {"format": "hashed-mlp", "hash_seed": seeds.pop(), "buckets": [l.bucket_counts[r] for l in model.layers]}
    weights = [layer.replica_weight()[r].t() for layer in model.layers]
    sparse = {}
    for i, w in enumerate(weights):
        csr = w.to_sparse_csr()  # keeps the non-zero weights: exactly those the record counts
        sparse |= {f"layers.{i}.values": csr.values().to(values), f"layers.{i}.col_indices": narrowest_int(csr.col_indices()),
                   f"layers.{i}.crow_indices": narrowest_int(csr.crow_indices())}  # fmt: skip
    # Dense when asked, when nothing is pruned, or when the indices would cost more than the zeros (ratio near 1).
    if dense or all(layer.mask is None for layer in model.layers) or nbytes(sparse) >= nbytes(weights):
        return tensors | {f"layers.{i}.weight": w for i, w in enumerate(weights)}, {"format": "dense-mlp"}
    return tensors | sparse, {"format": "csr-mlp", "nonzero": [int((w != 0).sum()) for w in weights]}


def nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in (tensors.values() if isinstance(tensors, dict) else tensors))


def narrowest_int(t: torch.Tensor) -> torch.Tensor:
    """Non-negative indices in uint8, int16 or int32, whichever is the narrowest that holds their maximum."""
    top = int(t.max()) if t.numel() else 0
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if top <= torch.iinfo(dtype).max:
            return t.to(dtype)
    return t.to(torch.int64)


def architecture(model, cfg: dict) -> dict:
    if hasattr(model, "conv"):
        return {"model": "convnet", "kernel": model.kernel, "channels": model.channels, "stride": model.stride,
                "pool": model.pool, "side": model.side, "classes": model.head.out_features}  # fmt: skip
    sizes = [model.layers[0].in_features] + [layer.out_features for layer in model.layers]
    return {"model": cfg["model"]["name"], "sizes": sizes, "activation": model.activation_name}


@torch.no_grad()
def export(path: Path, model, r: int, record: dict, standardization: tuple | None, dense: bool = False,
           values: torch.dtype = torch.float32) -> int:  # fmt: skip
    """Write replica `r` of `model` (its result `record`) to `path`; returns the file's bytes. `standardization`:
    the (mean, std) its inputs were standardized with, or None."""
    cfg = record["config"]
    tensors, specific = replica_tensors(model, r, dense, values)
    if standardization is not None:
        tensors |= {"input.mean": standardization[0].reshape(()), "input.std": standardization[1].reshape(())}
    config = {**specific, "architecture": architecture(model, cfg), "method": cfg["method"]["name"],
              "ratio": record["ratio"], "seed": record["seed"], "dataset": {**cfg["dataset"], "name": record["dataset"]},
              "protocol": cfg["protocol"]["name"], "key": record["key"], "commit": commit(),
              "standardized": standardization is not None}  # fmt: skip
    return file.write(path, tensors, config)


def load_population(run_dir: Path, records: list[dict]):
    """The trained population model of a run directory (its `model.pt`), and its input standardization per dataset."""
    saved = Path(run_dir) / "model.pt"
    if not saved.is_file():
        raise UserError(f"{saved} does not exist: export=true while training, or train with save_model=true")
    state = torch.load(saved, map_location="cpu")
    cfg = OmegaConf.create(records[0]["config"])
    cells = [(r["dataset"], r["seed"], r["ratio"]) for r in state["replicas"]]
    population = Population.build(cells, cfg.common_random_numbers)
    model = construct(cfg.model).build(population, IMAGE_PIXELS, cfg.protocol)
    masks = {k: v for k, v in state["state_dict"].items() if k.endswith(".mask")}
    model.load_state_dict({k: v for k, v in state["state_dict"].items() if k not in masks})
    for name, mask in masks.items():
        model.get_submodule(name.rsplit(".", 1)[0]).mask = mask
    standardization = {}
    if cfg.protocol.normalize:
        for dataset in {d for d, _, _ in cells}:
            standardization[dataset] = load_dataset(OmegaConf.merge(cfg.dataset, {"name": dataset}), cfg.data_dir, cfg.cache_dir).standardize_()
    return model, population, standardization


def export_runs(source: Path, out: Path | None, values: torch.dtype) -> list[tuple[Path, int]]:
    """Export every replica recorded in `source`, a run directory (its results.jsonl) or the results store."""
    source = Path(source)
    store = None if (source / "results.jsonl").is_file() else results.ResultStore(source)
    if store is not None:
        store.migrate()
    records = ([r for r in map(results.upgrade_record, results.read_jsonl(source / "results.jsonl")) if r is not None]
               if store is None else store.records())  # fmt: skip
    if not records:
        raise UserError(f"{source} holds no results.jsonl and no stored results")
    written = []
    for run_dir in dict.fromkeys(r["run_dir"] for r in records):
        mine = [r for r in records if r["run_dir"] == run_dir]
        if store is not None and not (Path(run_dir) / "model.pt").is_file():
            print(f"skipped {len(mine)} stored replica(s) of {run_dir}: no model.pt (trained without save_model=true)")
            continue
        model, population, standardization = load_population(Path(run_dir), mine)
        index = {r.cell: r.index for r in population.replicas}
        for record in mine:
            path = (out or Path(run_dir) / "artefacts") / f"{record['key']}.safetensors"
            size = export(path, model, index[record["dataset"], record["seed"], record["ratio"]], record,
                          standardization.get(record["dataset"]), values=values)  # fmt: skip
            if store is not None:
                store.put({**record, "artefact_bytes": size})
            written.append((path, size))
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a run directory (results.jsonl + model.pt) or the results store")
    parser.add_argument("--out", type=Path, help="folder for the artefacts (default: <run_dir>/artefacts)")
    parser.add_argument("--values", choices=("float32", "float16"), default="float32", help="pruned weights' dtype")
    args = parser.parse_args()
    with exit_on_user_error():
        for path, size in export_runs(args.source, args.out, getattr(torch, args.values)):
            print(f"{path}  {size} bytes")


if __name__ == "__main__":
    main()
