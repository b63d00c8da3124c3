import os
import signal
import subprocess
import sys
import time

from nncompress.population import Population
from nncompress.results import ResultStore, config_key, experiment_key

from conftest import ROOT, TINY


def test_experiment_key_ignores_run_settings_only():
    cfg = {"seeds": [0, 1], "ratio": [0.1], "logger": {"name": "wandb"}, "data_dir": "a", "hidden": 100,
           "dataset": {"name": "mnist", "source": "auto"}}  # fmt: skip
    key = experiment_key(cfg, "mnist", 0, 0.1, "original")
    assert key == experiment_key({**cfg, "logger": {"name": "csv"}, "data_dir": "b", "seeds": [0], "cuda_graph": False},
                                 "mnist", 0, 0.1, "original")  # fmt: skip
    assert key != experiment_key({**cfg, "hidden": 30}, "mnist", 0, 0.1, "original")
    assert key != experiment_key(cfg, "mnist", 1, 0.1, "original") != experiment_key(cfg, "mnist", 0, 0.1, "regenerated")
    # a replica of a population over datasets is the same experiment as a run on its dataset alone
    both = {**cfg, "dataset": {"name": ["mnist_rot", "mnist"], "source": "auto"}}
    assert experiment_key(both, "mnist", 0, 0.1, "original") == key != experiment_key(both, "mnist_rot", 0, 0.1, "original")
    # and keys written before populations spanned datasets stay valid: the replica config, run settings out
    single = {"seeds": [0], "ratio": 0.1, "hidden": 100, "dataset": {"name": "mnist", "source": "original"}}
    assert key == config_key(single)


def test_keys_survive_an_option_added_with_its_old_behaviour_as_default():
    old = {"seeds": [0], "ratio": 0.1, "protocol": {"name": "paper", "pruning": {"final_epochs": 50}},
           "dataset": {"name": "mnist"}}  # fmt: skip
    new = {**old, "protocol": {"name": "paper", "pruning": {"final_epochs": 50, "final": "fixed"}}}
    peak = {**old, "protocol": {"name": "paper", "pruning": {"final_epochs": 50, "final": "train_peak"}}}
    key = experiment_key(old, "mnist", 0, 0.1, "original")
    assert experiment_key(new, "mnist", 0, 0.1, "original") == key != experiment_key(peak, "mnist", 0, 0.1, "original")
    assert new["protocol"]["pruning"]["final"] == "fixed"  # the caller's config is left as it was


def test_pending_cells():
    cells = [("a", 0, 0.1), ("a", 0, 0.01), ("a", 1, 0.1), ("b", 0, 0.1)]
    done = {("a", 0, 0.1), ("a", 1, 0.1), ("b", 0, 0.1)}
    assert Population.pending(cells, done) == [("a", 0, 0.01)]
    assert Population.pending(cells, done, common_random_numbers=True) == [("a", 0, 0.1), ("a", 0, 0.01)]
    assert Population.pending(cells, set(cells), True) == []


def sweep(store, sweep_dir, log):
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "-m", "method=obd,magl1,magl2", "ratio=[0.1,0.01]",
           "seeds=[0,1]", *TINY, "protocol.pruning.first_epoch=1", "protocol.pruning.final_epochs=1",
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
