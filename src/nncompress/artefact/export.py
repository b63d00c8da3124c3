"""Write finished replicas as artefacts: from a population in memory (`train.py export=true`), or from the
`model.pt` of runs that saved their model (`save_model=true`), found from a run directory or the results store.

    python -m nncompress.artefact.export RUN_DIR_OR_STORE [--out DIR] [--values float16] [--update-store]

Writes `<out>/<key>.safetensors` (default out: `<run_dir>/artefacts`); runs without a saved model are skipped. A
store is only read, unless `--update-store` asks that each replica's artefact go into the store, beside its entry
(`artefacts/<key>.safetensors`), and its record gain `artefact_bytes`. Records are data: the model is rebuilt only
from the package's own classes, and `model.pt` is read as tensors only.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from .. import results
from ..data.datasets import Dataset, load_dataset
from ..errors import UserError, exit_on_user_error
from ..population import Population
from ..resources import commit
from ..results import foreign_target
from ..typed import construct
from . import file, formats

@torch.no_grad()
def export(path: Path, model, r: int, record: dict, standardization: tuple | None, dense: bool = False,
           values: torch.dtype = torch.float32, coded: bool = True) -> int:  # fmt: skip
    """Write replica `r` of `model` (its result `record`) to `path`; returns the file's bytes. `standardization`:
    the (mean, std) its inputs were standardized with, or None. An MLP or HashedNet goes in its coded format where
    that is the smaller file, unless `dense` or not `coded` (the plain formats, as the benchmark compares them)."""
    cfg = record["config"]
    tensors, specific = model.artefact(r, dense, values)
    if standardization is not None:
        tensors |= {"input.mean": standardization[0].reshape(()), "input.std": standardization[1].reshape(())}
    config = {**specific, "architecture": {"model": cfg["model"]["name"], **model.architecture()}, "method": cfg["method"]["name"],
              "ratio": record["ratio"], "seed": record["seed"], "dataset": dataset_node(cfg["dataset"], record["dataset"]),
              "protocol": cfg["protocol"]["name"], "key": record["key"], "commit": commit(),
              "standardized": standardization is not None}  # fmt: skip
    candidates = [(tensors, config, False)]
    if coded and not dense and (smaller := formats.coded(tensors, config)) is not None:
        candidates.append((*smaller, True))  # a coded file packs its metadata too (file.pack)
    return file.write(path, *file.smallest(path, candidates))


def dataset_node(node: dict, name: str) -> dict:
    """The dataset a replica was tested on, as `schema.dataset` reads it: the fields that are not their default."""
    defaults = {f.name: f.default for f in dataclasses.fields(Dataset)}
    return {k: v for k, v in {**node, "name": name}.items() if k in defaults and (k == "name" or v != defaults[k])}


def load_population(run_dir: Path, records: list[dict], standardization: dict | None = None):
    """The trained population model of a run directory (its `model.pt`), and its input standardization per dataset
    (`standardization` when the caller has it, else computed from the data its records name)."""
    saved = Path(run_dir) / "model.pt"
    if not saved.is_file():
        raise UserError(f"{saved} does not exist: export=true while training, or train with save_model=true")
    try:
        state = torch.load(saved, map_location="cpu", weights_only=True)  # tensors and plain values, never code
    except Exception as err:  # unpickling's errors share no type: any means the file is not a saved population
        raise UserError(f"{saved} is not a saved population ({str(err).splitlines()[0][:120]})") from None
    node = records[0]["config"]["model"]
    foreign = foreign_target(node)
    if foreign is not None:
        raise UserError(f"{saved.parent}: its records name the model class {foreign!r}, not one of this package's: "
                        "only those are built from a record")  # fmt: skip
    cfg = OmegaConf.create(records[0]["config"])  # a record holds no interpolation (records.problem)
    cells = [(r["dataset"], r["seed"], r["ratio"]) for r in state["replicas"]]
    population = Population.build(cells, cfg.common_random_numbers)
    features = Dataset(name=population.datasets[0]).contents.images.features  # a population's datasets share theirs
    model = construct(cfg.model).build(population, features, cfg.protocol)
    masks = {k: v for k, v in state["state_dict"].items() if k.endswith(".mask")}
    model.load_state_dict({k: v for k, v in state["state_dict"].items() if k not in masks})
    for name, mask in masks.items():
        model.get_submodule(name.rsplit(".", 1)[0]).mask = mask
    if standardization is not None:
        return model, population, standardization
    standardization = {}
    if cfg.protocol.normalize:
        for dataset in {d for d, _, _ in cells}:
            standardization[dataset] = load_dataset(OmegaConf.merge(cfg.dataset, {"name": dataset}), cfg.data_dir, cfg.cache_dir).standardize_()
    return model, population, standardization


def source_records(source: Path) -> tuple[dict[str, list[dict]], results.ResultStore | None]:
    """The usable records of `source` grouped by the run directory holding their `model.pt`: a run directory's own
    `results.jsonl` (that directory, whatever its records say), or a results store's (their `run_dir`)."""
    left_out = {}
    if (source / "results.jsonl").is_file():
        store, found = None, results.jsonl_records(source / "results.jsonl", left_out)
    else:
        store = results.ResultStore.open(source)
        found = {str(store.path(r["key"])): r for r in store.records()}
        left_out |= store.bad
    records = list(results.upgraded(found, left_out).values())
    if left_out:
        print(f"warning: {len(left_out)} record(s) left out ({results.describe(left_out)})", file=sys.stderr)
    if not records:
        raise UserError(f"{source} holds no usable results.jsonl records and no stored results")
    runs = {}
    for record in records:
        runs.setdefault(str(source) if store is None else record.get("run_dir", ""), []).append(record)
    return runs, store


def export_saved(run_dir: Path, records: list[dict], paths: dict[str, Path], values: torch.dtype = torch.float32,
                 standardization: dict | None = None) -> dict[str, int]:
    """Export the replicas of `records` from the `model.pt` of `run_dir`, each to its key's path in `paths`; returns
    key -> the artefact's bytes."""
    model, population, standardization = load_population(run_dir, records, standardization)
    index = {r.cell: r.index for r in population.replicas}
    cells = {record["key"]: (record["dataset"], record["seed"], record["ratio"]) for record in records}
    foreign = next((cell for cell in cells.values() if cell not in index), None)
    if foreign is not None:  # before writing any: all of them or none
        raise UserError(f"{run_dir}/model.pt holds no replica {foreign}: its records are not this run's")
    return {r["key"]: export(paths[r["key"]], model, index[cells[r["key"]]], r, standardization.get(r["dataset"]),
                             values=values) for r in records}  # fmt: skip


def export_runs(source: Path, out: Path | None, values: torch.dtype, update_store: bool = False) -> list[tuple[Path, int]]:
    """Export every replica recorded in `source`, a run directory (its results.jsonl) or a results store; with
    `update_store`, each stored replica's artefact goes into the store beside its entry, which gains its
    `artefact_bytes`."""
    if update_store and out is not None:
        raise UserError("--update-store writes each artefact into the store, beside its entry (artefacts/): drop --out")
    runs, store = source_records(Path(source))
    update = update_store and store is not None
    written = []
    for run_dir, mine in runs.items():
        if store is not None and not (Path(run_dir) / "model.pt").is_file():
            print(f"skipped {len(mine)} stored replica(s) of {run_dir or '(no run_dir)'}: no model.pt (trained without save_model=true)")
            continue
        folder = out or Path(run_dir) / "artefacts"  # named by keys: never climbs out
        paths = {r["key"]: store.artefact(r["key"]) if update else folder / f"{r['key']}.safetensors" for r in mine}
        sizes = export_saved(Path(run_dir), mine, paths, values)
        for record in mine:
            if update:
                store.put({**record, "artefact_bytes": sizes[record["key"]]})
            written.append((paths[record["key"]], sizes[record["key"]]))
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a run directory (results.jsonl + model.pt) or the results store")
    parser.add_argument("--out", type=Path, help="folder for the artefacts (default: <run_dir>/artefacts)")
    parser.add_argument("--values", choices=("float32", "float16"), default="float32", help="pruned weights' dtype")
    parser.add_argument("--update-store", action="store_true",
                        help="write each artefact into the store beside its entry, and its bytes into the entry")
    args = parser.parse_args()
    with exit_on_user_error():
        for path, size in export_runs(args.source, args.out, getattr(torch, args.values), args.update_store):
            print(f"{path}  {size} bytes")


if __name__ == "__main__":
    main()
