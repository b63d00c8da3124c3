import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nncompress import load_results
from nncompress.population import Population
from nncompress.results import ResultStore, experiment_key, upgrade_record, without_defaults

from conftest import ROOT, TINY, NamedStore, run_train
from test_faults import composed
from test_report import fake_record


def key(*overrides, dataset="mnist", seed=0, ratio=1.0, source="original"):
    """The experiment key of one replica of the config `overrides` compose."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", overrides=list(overrides)), resolve=True)
    return experiment_key(cfg, dataset, seed, ratio, source)


def test_experiment_key_hashes_only_what_changes_the_result():
    base = key()
    assert base == key("logger=csv", "data_dir=/elsewhere", "cuda_graph=false", "eval_batch_size=7", "export=true",
                       "histogram_epochs=[3]", "seeds=[0,5]")  # fmt: skip
    assert base == key("schedule.steps=3", "pruning.timing.every=7", "schedule=power")  # no pruning: unused
    assert base != key("model.hidden=30") != key("protocol.lr=0.1") != key("dataset.split=official")
    assert base != key(seed=1) != key(source="regenerated")
    pruned = key("method=magl1", ratio=0.1)
    assert pruned != key("method=magl1", "schedule.steps=3", ratio=0.1) != key("method=magl2", ratio=0.1)
    assert key("model=convnet") == key("model=convnet", "model.channels=8")  # a default, said or not
    # a replica of a population over datasets is the same experiment as a run on its dataset alone
    assert key("dataset=paper_tables") == base != key("dataset=paper_tables", dataset="mnist_rot")


def test_an_option_a_run_cannot_use_splits_neither_its_key_nor_its_report_variant(tmp_path):
    """Under a method that prunes, pruning's timing ends the run: protocol.epochs has no effect there."""
    for protocol in ("fast", "paper"):
        pruned = key(f"protocol={protocol}", "method=obd", ratio=0.1)
        assert pruned == key(f"protocol={protocol}", "method=obd", "protocol.epochs=7", ratio=0.1)
        assert key(f"protocol={protocol}") != key(f"protocol={protocol}", "protocol.epochs=7")  # it trains dense ones
    store = NamedStore(tmp_path / "store")
    for seed, epochs in ((0, 100), (1, 7)):
        record = fake_record("obd", 100, "mnist", 0.01, seed, 0.9, protocol="paper")
        record["config"]["method"]["saliency"] = {"_target_": "nncompress.compression.saliency.OBD"}
        record["config"]["protocol"]["epochs"] = epochs
        store.put(record)
    assert set(load_results(store.root)["protocol"]) == {"paper"}


@dataclass
class Grown:
    """A config node's class before an option is added to it."""

    a: int = 1


def test_keys_survive_an_option_added_with_its_old_behaviour_as_default(monkeypatch):
    node = {"model": {"_target_": f"{__name__}.Grown", "a": 1}}
    cfg = json.loads(json.dumps(OmegaConf.to_container(composed(), resolve=True))) | node
    before = experiment_key(cfg, "mnist", 0, 1.0, "original")

    @dataclass
    class Grown2:
        a: int = 1
        b: str = "old behaviour"

    monkeypatch.setattr(sys.modules[__name__], "Grown", Grown2)
    with_b = lambda b: cfg | {"model": {**node["model"], "b": b}}  # noqa: E731
    assert experiment_key(with_b("old behaviour"), "mnist", 0, 1.0, "original") == before
    assert experiment_key(with_b("new behaviour"), "mnist", 0, 1.0, "original") != before
    # the option added for real: Timing.final, whose default `fixed` is what runs did before it existed
    timing = {"first_epoch": 50, "every": 25, "threshold": 0.96, "final_epochs": 50}
    assert without_defaults({"_target_": "nncompress.compression.schedules.Timing", **timing, "final": "fixed"}) == \
        {"_target_": "nncompress.compression.schedules.Timing", **timing}


# The results-store entries that key version 1 wrote (before configs were constructor trees), and today's overrides
# for the same experiments.
V1_STORE = ROOT / "tests" / "fixtures" / "store_v1"
TINY_V1 = ["dataset.train_size=1000", "dataset.test_size=500", "protocol.epochs=2"]
PRUNE_V1 = ["pruning.timing.first_epoch=0", "pruning.timing.every=1", "pruning.timing.final_epochs=1", "schedule.steps=1"]
V1_RUNS = {
    ("mlp", "none"): TINY_V1,
    ("mlp", "magl1"): TINY_V1 + PRUNE_V1 + ["method=magl1"],
    ("mlp", "obd"): TINY_V1 + PRUNE_V1 + ["method=obd"],
    ("hashednet", "none"): TINY_V1 + ["model=hashednet", "model.hidden=30"],
    ("convnet", "none"): TINY_V1 + ["model=convnet"],
    ("mlp", "magl2"): TINY_V1 + PRUNE_V1 + ["protocol=paper", "protocol.lr=1.0", "method=magl2", "model.hidden=30", "dataset=mnist_rot",
                                             "dataset.source=regenerated"],  # fmt: skip
}


def test_entries_of_key_version_1_get_the_keys_of_todays_same_experiments():
    for path in sorted(V1_STORE.glob("*.json")):
        old = json.loads(path.read_text())
        new = upgrade_record(old)
        overrides = V1_RUNS[old["config"]["model"]["name"], old["config"]["method"]["name"]]
        assert new["key"] == key(*overrides, dataset=old["dataset"], seed=old["seed"], ratio=old["ratio"],
                                 source=old["source"]), path.name  # fmt: skip
        assert new["v1_key"] == old["key"] == path.stem and new["test_acc"] == old["test_acc"]


def test_a_store_of_key_version_1_is_migrated_and_resumed(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(V1_STORE, store)
    out = run_train(*TINY_V1, "seeds=[0,1]", "logger=none", f"results_dir={store}")
    assert out.returncode == 0, out.stderr
    assert "7 entries of an earlier key scheme re-keyed" in out.stdout and "nothing to do: all 2 replica(s)" in out.stdout
    assert sorted(p.name for p in (store / "migrated").iterdir()) == sorted(p.name for p in V1_STORE.iterdir())
    assert len(ResultStore(store).records()) == 7 and ResultStore(store).migrate() == 0


def test_pending_cells():
    cells = [("a", 0, 0.1), ("a", 0, 0.01), ("a", 1, 0.1), ("b", 0, 0.1)]
    done = {("a", 0, 0.1), ("a", 1, 0.1), ("b", 0, 0.1)}
    assert Population.pending(cells, done) == [("a", 0, 0.01)]
    assert Population.pending(cells, done, common_random_numbers=True) == [("a", 0, 0.1), ("a", 0, 0.01)]
    assert Population.pending(cells, set(cells), True) == []


def sweep(store, sweep_dir, log):
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "-m", "method=obd,magl1,magl2", "ratio=[0.1,0.01]",
           "seeds=[0,1]", *TINY, "pruning.timing.first_epoch=1", "pruning.timing.final_epochs=1",
           "schedule.steps=2", f"results_dir={store}", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_killed_sweep_resumes_without_losing_or_duplicating(tmp_path):
    store = tmp_path / "store"
    proc = sweep(store, tmp_path / "first", open(tmp_path / "first.log", "w"))
    deadline = time.time() + 300
    while len(list(store.glob("*.json"))) < 4 and time.time() < deadline and proc.poll() is None:  # the first job (4 replicas) is done
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-way through the second job
    proc.wait()
    first = {p.name: p.read_text() for p in store.glob("*.json")}
    assert len(first) == 4, (tmp_path / "first.log").read_text()[-3000:]
    rerun = sweep(store, tmp_path / "second", open(tmp_path / "second.log", "w"))
    rerun.wait(timeout=600)
    out = (tmp_path / "second.log").read_text()
    assert rerun.returncode == 0, out[-3000:]
    assert "nothing to do: all 4 replica(s)" in out  # the finished job was skipped
    records = ResultStore(store).records()
    assert len(records) == 12 and len({r["key"] for r in records}) == 12
    assert sorted((r["config"]["method"]["name"], r["seed"], r["ratio"]) for r in records) == sorted(
        (m, s, q) for m in ("obd", "magl1", "magl2") for s in (0, 1) for q in (0.1, 0.01)
    )
    assert all(store.joinpath(name).read_text() == text for name, text in first.items())  # untouched


def test_a_convnet_with_dropout_of_key_version_1_is_trained_again(tmp_path):
    """Its masks came from a generator its whole population shared: the same key could give another result now."""
    convnet = next(r for r in map(json.loads, map(Path.read_text, V1_STORE.glob("*.json")))
                   if r["config"]["model"]["name"] == "convnet")  # fmt: skip
    dropped = {**convnet, "config": {**convnet["config"], "model": {**convnet["config"]["model"], "dropout": 0.2}}}
    assert upgrade_record(convnet) is not None and upgrade_record(dropped) is None
    store = ResultStore(tmp_path / "store")
    store.put(dropped)
    assert store.migrate() == 1 and store.records() == [] and (store.root / "migrated" / f"{convnet['key']}.json").exists()


def test_the_measured_replicas_kept_in_reference_bear_todays_keys():
    """reference/measured/ is a results store committed with the repository: each record must still be the
    replica today's code would store under its key (else a report pools it wrongly and a resume copying it
    into a store would not skip it), so a change of the key scheme has to migrate these files too."""
    measured = ROOT / "reference" / "measured"
    paths = sorted(measured.glob("*.json"))
    assert paths, "reference/measured holds no replicas"
    assert len(ResultStore(measured).records()) == len(paths)
    for path in paths:
        record = json.loads(path.read_text())
        assert path.stem == record["key"] == experiment_key(
            record["config"], record["dataset"], record["seed"], record["ratio"], record["source"])
        assert upgrade_record(record) == record
        # one-hidden-layer MLPs at the paper protocol; the ConvNets and HashedNets the model claims compare them with at
        # their own, and the deeper nets of the report in bytes (LeNet-300-100) at protocol=fast, as Deep Compression's
        config = record["config"]
        assert (config["protocol"]["name"] == "paper" or config["model"]["name"] != "mlp"
                or (isinstance(config["model"]["hidden"], list) and config["protocol"]["name"] == "fast"))  # fmt: skip
