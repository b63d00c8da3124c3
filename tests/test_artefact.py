"""Artefacts: every family exported, loaded as a plain module, and checked against the population it came from."""
import json
import stat
import subprocess

import pytest
import torch
from omegaconf import OmegaConf

from nncompress import artefact
from nncompress.artefact import file
from nncompress.artefact.__main__ import measure
from nncompress.artefact.export import export
from nncompress.errors import UserError
from nncompress.models.factory import ConvNet, HashedNet, MLP
from nncompress.population import Population
from nncompress.results import ResultStore, read_jsonl

from conftest import DATA_DIR, ROOT, TINY, run_python, run_train

MEAN_STD = (torch.tensor(0.13), torch.tensor(0.31))


def population_model(model: dict, ratios, seeds=(0, 1)):
    """An initialised population of `model` (2 seeds x `ratios`, common random numbers: streams of several replicas)."""
    spec = {"mlp": MLP, "hashednet": HashedNet, "convnet": ConvNet}[model["name"]](**model)
    population = Population.grid(list(seeds), list(ratios), common_random_numbers=True)
    return spec.build(population, 784, OmegaConf.create({"activation": "relu", "init": "kaiming"})), population


def record(population, r: int, model: str, method: str = "none") -> dict:
    replica = population.replicas[r]
    return {"key": f"{r:016x}", "seed": replica.seed, "ratio": replica.ratio, "dataset": "mnist",
            "config": {"method": {"name": method}, "model": {"name": model}, "protocol": {"name": "fast"},
                       "dataset": {"name": "mnist", "split": "paper"}}}  # fmt: skip


def prune_(model, ratio_of):
    """Random masks keeping `ratio_of(r)` of each replica's weights (zeroing the rest, as pruning does)."""
    g = torch.Generator().manual_seed(0)
    for layer in model.layers:
        shape = (layer.replicas, layer.in_features, layer.out_features)
        keep = torch.rand(shape, generator=g) < torch.tensor([ratio_of(r) for r in range(layer.replicas)]).view(-1, 1, 1)
        layer.set_replica_mask_(keep)


FAMILIES = {
    "dense-mlp": ({"name": "mlp"}, [1.0, 1.0 - 1e-9]),
    "csr-mlp": ({"name": "mlp"}, [0.1, 0.01]),
    "coded-mlp": ({"name": "mlp"}, [0.1, 0.01]),
    "hashed-mlp": ({"name": "hashednet", "hash_seed": 3, "shared_hash": False}, [0.1, 0.01]),
    "coded-hashed-mlp": ({"name": "hashednet", "hash_seed": 3, "shared_hash": False}, [0.1, 0.01]),
    "convnet": ({"name": "convnet", "kernel": 5, "channels": 4, "stride": 2, "pool": 2, "dropout": 0.0}, [1.0, 1.0 - 1e-9]),
}


PRUNED = ("csr-mlp", "coded-mlp")  # the families written from pruned replicas; a coded one: `coded=True`


@pytest.mark.parametrize("family", FAMILIES)
def test_loaded_module_gives_the_population_replicas_logits(tmp_path, family):
    spec, ratios = FAMILIES[family]
    model, population = population_model(spec, ratios)
    if family in PRUNED:
        prune_(model, lambda r: population.replicas[r].ratio)
    model.eval()
    x = torch.rand(64, 784)
    with torch.no_grad():
        expected = model((x - MEAN_STD[0]) / MEAN_STD[1])
    method = "magl1" if family in PRUNED else "none"
    for r in range(population.size):
        path = tmp_path / f"{r}.safetensors"
        size = export(path, model, r, record(population, r, spec["name"], method), MEAN_STD, coded=family.startswith("coded-"))
        assert size == path.stat().st_size
        loaded = artefact.load(path)
        assert isinstance(loaded, torch.nn.Module) and not any(p.requires_grad for p in loaded.parameters())
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected[r], rtol=1e-5, atol=1e-5)
        metadata = __import__("safetensors").safe_open(str(path), "pt").metadata()
        entry = metadata["nncompress"] if metadata.keys() == {"nncompress"} else file.unpack(path, metadata["nncompress.z85"])
        assert json.loads(entry)["config"]["format"] == family
        assert (metadata.keys() == {"nncompress.z85"}) == family.startswith("coded-")  # a coded file packs it


@pytest.mark.parametrize("ratio", [0.1, 0.01, 0.002])
def test_sparse_mlps_small_and_large_batch_kernels_give_the_dense_logits(tmp_path, ratio):
    """Batches on either side of `SMALL_BATCH` (dense matmuls of the compacted matrices / CSR) against float64
    matmuls of the pruned weights; random masks leave pixels and hidden units that nothing reads."""
    model, population = population_model({"name": "mlp"}, [ratio], seeds=(0,))
    prune_(model, lambda r: ratio)
    export(tmp_path / "s.safetensors", model, 0, record(population, 0, "mlp", "magl1"), MEAN_STD)
    loaded = artefact.load(tmp_path / "s.safetensors")
    if ratio <= 0.01:
        assert len(loaded.inputs) < 784 and len(loaded.dense[0][0]) < 100  # the compaction is exercised
    (w0, b0), (w1, b1) = ((layer.replica_weight()[0].double(), layer.replica_bias()[0].double()) for layer in model.layers)
    for batch in (1, loaded.SMALL_BATCH - 1, loaded.SMALL_BATCH, 1000):
        x = torch.rand(batch, 784)
        expected = torch.relu((x.double() - MEAN_STD[0]) / MEAN_STD[1] @ w0 + b0) @ w1 + b1
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected.float(), rtol=1e-5, atol=1e-5)


def test_pruned_artefact_holds_only_the_kept_weights_in_a_fifteenth_of_the_dense_bytes(tmp_path):
    model, population = population_model({"name": "mlp"}, [0.01], seeds=(0,))
    prune_(model, lambda r: 0.01)
    rec = record(population, 0, "mlp", "obd")
    sparse = export(tmp_path / "s.safetensors", model, 0, rec, MEAN_STD, coded=False)
    dense = export(tmp_path / "d.safetensors", model, 0, rec, MEAN_STD, dense=True)
    half = export(tmp_path / "h.safetensors", model, 0, rec, MEAN_STD, values=torch.float16, coded=False)
    assert sparse <= dense / 15 and half < sparse
    from safetensors.torch import load_file

    kept = sum(int((layer.replica_weight()[0] != 0).sum()) for layer in model.layers)
    stored = load_file(tmp_path / "s.safetensors")
    assert sum(stored[f"layers.{i}.values"].numel() for i in (0, 1)) == kept
    assert abs(kept / (784 * 100 + 100 * 10) - 0.01) < 0.002
    assert stored["layers.0.col_indices"].dtype == torch.int16 and stored["layers.1.col_indices"].dtype == torch.uint8
    x = torch.rand(8, 784)
    torch.testing.assert_close(artefact.load(tmp_path / "h.safetensors")(x), artefact.load(tmp_path / "d.safetensors")(x),
                               rtol=1e-2, atol=1e-2)  # fmt: skip


def damaged(tmp_path):
    """name -> (path of a bad file, what its error says)."""
    model, population = population_model({"name": "mlp"}, [1.0], seeds=(0,))
    good = tmp_path / "good.safetensors"
    export(good, model, 0, record(population, 0, "mlp"), MEAN_STD, coded=False)
    data = good.read_bytes()
    files = {"missing": (tmp_path / "nothing.safetensors", "no artefact at"),
             "truncated": (tmp_path / "truncated.safetensors", "truncated or foreign"),
             "foreign": (tmp_path / "foreign.safetensors", "truncated or foreign"),
             "checksum": (tmp_path / "flipped.safetensors", "checksum mismatch"),
             "shapes": (tmp_path / "shapes.safetensors", "tensors do not match its config")}  # fmt: skip
    files["truncated"][0].write_bytes(data[: len(data) // 2])
    files["foreign"][0].write_bytes(b"PK\x03\x04 not a safetensors file at all")
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF  # a weight's byte
    files["checksum"][0].write_bytes(bytes(flipped))
    tensors, config = file.read(good)
    config["architecture"]["sizes"][1] = 99
    file.write(files["shapes"][0], tensors, config)
    return files


def test_bad_files_fail_with_one_line(tmp_path):
    for name, (path, message) in damaged(tmp_path).items():
        with pytest.raises(UserError, match=message) as err:
            artefact.load(path)
        assert "\n" not in str(err.value), name
    path, message = damaged(tmp_path)["truncated"]
    proc = run_python("-m", "nncompress.artefact", path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def check_run(run_dir, store, data_dir=DATA_DIR):
    """Every replica of a run exported into the store: its file's size in its record, its accuracy measured again
    equal."""
    records = read_jsonl(run_dir / "results.jsonl")
    for r in records:
        path = store / "artefacts" / f"{r['key']}.safetensors"
        measured = measure(path, None, str(data_dir), "~/.cache/nncompress")
        assert r["artefact_bytes"] == path.stat().st_size == measured["bytes"]
        assert measured["parameters"] == r["parameters"] and abs(measured["test_acc"] - r["test_acc"]) < 1e-4
        assert measured["latency_ms_batch1"] > 0 and measured["latency_ms_batch1000"] > 0
    return records


def test_trained_families_export_and_measure_their_stored_accuracy(tmp_path, results_dir):
    """Runs of every family (pruned by each method, dense, hashed, ConvNet) with `export=true`; then the export
    command, from the results store, writes the pruned runs' saved models as the same artefacts."""
    pruning = ["pruning.timing.first_epoch=1", "pruning.timing.final_epochs=1", "schedule.steps=2"]
    for name, args in {"pruned": ["-m", "method=obd,magl1,magl2", "ratio=[0.01]", "save_model=true", *pruning],
                       "dense": ["-m", "model=mlp,hashednet", "ratio=[1.0]"],
                       "conv": ["model=convnet", "protocol=convnet", "protocol.epochs=1", "model.kernel=7",
                                "model.channels=4", "model.pool=3"]}.items():  # fmt: skip
        proc = run_train(*args, *TINY, "export=true", f"hydra.sweep.dir={tmp_path}/{name}", f"hydra.run.dir={tmp_path}/{name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.parent for p in tmp_path.rglob("results.jsonl"))
    records = {r["config"]["model"]["name"] + "/" + r["config"]["method"]["name"]: r
               for d in runs for r in check_run(d, results_dir)}  # fmt: skip
    assert sorted(records) == ["convnet/none", "hashednet/none", "mlp/magl1", "mlp/magl2", "mlp/none", "mlp/obd"]
    for method in ("obd", "magl1", "magl2"):
        assert records[f"mlp/{method}"]["nonzero_weights"] == round(0.01 * 79400)
        assert records[f"mlp/{method}"]["artefact_bytes"] <= records["mlp/none"]["artefact_bytes"] / 15
    stored = {json.loads(p.read_text())["key"]: json.loads(p.read_text()) for p in results_dir.glob("*.json")}
    assert all(stored[r["key"]]["artefact_bytes"] == r["artefact_bytes"] for r in records.values())
    proc = run_python("-m", "nncompress.artefact", next(tmp_path.rglob("*.safetensors")))
    assert proc.returncode == 0, proc.stderr
    assert {"test_acc", "bytes", "parameters", "latency_ms_batch1", "latency_ms_batch1000"} <= json.loads(proc.stdout).keys()
    for p in results_dir.glob("*.json"):
        p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "artefact_bytes"}))
    (results_dir / "artefacts").rename(tmp_path / "first")
    export = ["-m", "nncompress.artefact.export", results_dir]
    assert run_python(*export, "--out", tmp_path / "again").returncode == 0
    assert not (results_dir / "artefacts").exists()  # a store is only read
    assert run_python(*export, "--update-store").returncode == 0  # into the store, beside the entries
    for r in records.values():
        again, first = tmp_path / "again" / f"{r['key']}.safetensors", tmp_path / "first" / f"{r['key']}.safetensors"
        if r["config"]["save_model"]:  # the same bytes as the run's own export (a separate process)
            assert again.read_bytes() == first.read_bytes() == (results_dir / "artefacts" / again.name).read_bytes()
            assert again.stat().st_size == r["artefact_bytes"]
        assert json.loads((results_dir / f"{r['key']}.json").read_text()).get("artefact_bytes") == (
            r["artefact_bytes"] if r["config"]["save_model"] else None)
    refused = run_python(*export, "--update-store", "--out", tmp_path)
    assert refused.returncode == 1 and refused.stderr.startswith("error: --update-store writes each artefact into")


def test_a_resumed_run_exports_its_stored_replicas_into_the_store_readable_by_colleagues(tmp_path, cache_dir):
    """`export=true` on a run that finds replicas stored: those without an artefact get one from their run's saved
    model, those whose run saved none are named in one line; artefacts live in the store beside their entries, so
    `make clean` keeps them. Under umask 022 every file a run writes (entries, artefacts, results.jsonl) is 0644,
    readable by a lab's colleagues."""
    small = ["dataset.train_size=600", "dataset.test_size=300", "protocol.epochs=2", "logger=none"]
    results_dir = tmp_path / "multirun" / "results"  # a checkout's layout, in a temporary folder

    def run(name, *overrides):
        where = [f"results_dir={results_dir}", f"hydra.run.dir={tmp_path / 'outputs' / name}"]
        proc = run_python(ROOT / "src" / "train.py", *small, *overrides, *where, umask=0o022)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    run("saved", "seeds=[0,1]", "save_model=true")
    store = ResultStore(results_dir)
    unsaved = next(r for r in store.records() if r["seed"] == 1)
    store.put({**unsaved, "run_dir": str(tmp_path / "gone")})  # as if its run folder, saved model and all, were gone
    proc = run("export", "seeds=[0,1,2]", "export=true")
    assert "export: 1 stored replica(s) exported from their saved model" in proc.stdout
    named = [line for line in proc.stderr.splitlines() if "no saved model" in line]
    assert len(named) == 1 and ": mnist_seed1_ratio1; resume=false export=true" in named[0], proc.stderr
    stored = {r["seed"]: r for r in ResultStore(results_dir).records()}
    artefacts = {p.name for p in (results_dir / "artefacts").iterdir()}
    assert artefacts == {f"{stored[seed]['key']}.safetensors" for seed in (0, 2)} and "artefact_bytes" not in stored[1]
    for seed in (0, 2):  # the saved model's export and the fresh one: each its replica, as the store says
        path = results_dir / "artefacts" / f"{stored[seed]['key']}.safetensors"
        measured = measure(path, None, str(DATA_DIR), str(cache_dir))
        assert stored[seed]["artefact_bytes"] == path.stat().st_size
        assert abs(measured["test_acc"] - stored[seed]["test_acc"]) < 1e-6  # float32 in the record: 1/300 a test image
        assert measured["parameters"] == stored[seed]["parameters"]
    written = [results_dir / f"{stored[seed]['key']}.json" for seed in (0, 2)]  # 1's last written by this test
    written += [results_dir / "artefacts" / name for name in artefacts]
    written += [tmp_path / "outputs" / name / "results.jsonl" for name in ("saved", "export")]
    assert {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == \
        {str(p.relative_to(tmp_path)): "0o644" for p in written}
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), "clean"], check=True,
                   env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert not (tmp_path / "outputs").exists()  # the runs, their saved model with them
    named = [r for r in ResultStore(results_dir).records() if "artefact_bytes" in r]
    assert len(named) == 2 and all((results_dir / "artefacts" / f"{r['key']}.safetensors").stat().st_size
                                   == r["artefact_bytes"] for r in named)  # fmt: skip


def test_a_pruned_replica_is_written_in_whichever_format_is_smaller():
    """CSR's indices cost more than the zeros they skip when little is pruned: such a replica is written dense."""
    model, population = population_model({"name": "mlp"}, [0.9, 0.5])
    prune_(model, lambda r: population.replicas[r].ratio)
    formats = [model.artefact(r)[1]["format"] for r in range(population.size)]
    assert [f for f, r in zip(formats, population.replicas) if r.ratio == 0.9] == ["dense-mlp"] * 2
    assert [f for f, r in zip(formats, population.replicas) if r.ratio == 0.5] == ["csr-mlp"] * 2
