"""Bad input refused in one line before any training, diverged or interrupted runs never stored as good, a damaged
cache entry rebuilt, and a damaged store entry left alone until a run is asked to repair it."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from nncompress import config
from nncompress.data.cache import load_cached
from nncompress.errors import UserError
from nncompress.results import ResultStore, config_key, read_jsonl

from conftest import ROOT, TINY, run_train


def composed(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.hidden=abc"], "model.hidden must be an integer, got 'abc'"),
        (["ratio=abc"], "ratio must be a number, got 'abc'"),
        (["ratio=[]"], "ratio must be a fraction of weights kept or a non-empty list"),
        (["protocol.lr=-1"], "protocol.lr must be a finite number in [0, inf], got -1"),
        (["protocol.lr=nan"], "protocol.lr must be a finite number"),
        (["protocol.lr=0"], "protocol.lr must be positive"),
        (["eval_batch_size=0"], "eval_batch_size must be at least 1, got 0"),
        (["dataset.train_size=0"], "dataset.train_size must be at least 1, got 0"),
        (["dataset.train_size=-5"], "dataset.train_size must be at least 1, got -5"),
        (["dataset.test_size=0"], "dataset.test_size must be at least 1, got 0"),
        (["method=magl1", "pruning.timing.threshold=2"], "pruning.timing.threshold must be a finite number in [0, 1]"),
        (["method=magl1", "pruning.timing.final=best"], "unknown pruning.timing.final 'best'"),
        # Limits: memory, and runs of months.
        (["model.hidden=1000000000"], "model.hidden must be at most 100000 (a population's weights must fit in memory)"),
        (["model=convnet", "model.channels=5000"], "model.channels must be at most 1024 (a population's feature maps"),
        (["model=convnet", "model.stride=100", "model.pool=1"], "model.stride must be at most 28 (the images' side)"),
        (["protocol.epochs=1e20"], "protocol.epochs must be an integer written in digits, got '1e+20'"),
        (["protocol.epochs=100000000000000000000"], "protocol.epochs must be at most 100000 (more would run for months)"),
        (["method=magl1", "schedule.steps=1000000000"], "pruning.schedule.steps must be at most 100000"),
        (["method=magl1", "pruning.timing.first_epoch=100000000000000000000"], "pruning.timing.first_epoch must be at most"),
        (["method=magl1", "schedule.steps=50000", "pruning.timing.every=3"], "pruning would train up to 150011 epochs"),
        # Sizes beyond the data: the run would train or test on fewer images than it records.
        (["dataset.train_size=1000000000"], "dataset.train_size must be at most 50000 (the training images of mnist's"),
        (["dataset.val_size=1000", "dataset.train_size=49001"], "dataset.train_size must be at most 49000"),
        (["dataset=mnist_rot", "dataset.split=official", "dataset.train_size=12001"], "train_size must be at most 12000"),
        (["dataset.test_size=12001"], "dataset.test_size must be at most 12000 (the test images of mnist's paper split)"),
        (["dataset.val_size=50000"], "dataset.val_size must be less than 50000"),
        (["protocol.batch_size=10000000"], "protocol.batch_size must be at most the 50000 training images of mnist"),
        (["dataset.train_size=50"], "protocol.batch_size must be at most the 50 training images of mnist, got 100"),
    ],
)
def test_bad_values_are_refused_before_training(overrides, message):
    with pytest.raises(UserError) as err:
        config.build(composed(*overrides))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_presets_are_within_the_limits():
    for protocol in ("paper", "fast"):  # paper: pruning's longest timetable, 450 epochs
        for preset in ("table1", "table6", "fig6 method=magl1", "smoke method=obd", "fig1"):
            config.build(composed(*f"+experiment={preset} protocol={protocol}".split()))
    for corner in ("model.kernel=10 model.channels=12 model.stride=3 model.pool=4", "dataset.split=official"):
        config.build(composed("+experiment=convnet_grid", "dataset=mnist_back_image", *corner.split()))


def test_negative_seeds_are_seeds_like_any_other():
    assert config.seeds(composed("seeds=[-1,3]")) == [-1, 3]
    config.validate(composed("seeds=[-1]"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when no GPU is visible")
def test_gpu_asked_for_without_one():
    with pytest.raises(UserError, match="accelerator=gpu but no CUDA GPU is visible"):
        config.validate(composed("accelerator=gpu"))


def test_keys_that_moved_say_where_to():
    for arg, moved in (("hidden=30", "model.hidden"), ("protocol.pruning.threshold=0.9", "pruning.timing.threshold"),
                       ("pruning_scope=layer", "pruning.scope")):  # fmt: skip
        with pytest.raises(UserError, match=f"unknown config key '.*' \\(now {moved}\\)"):
            config.check_choices([arg])


def test_unknown_keys_are_one_line_errors():
    for arg, key in (("foo=1", "foo"), ("protocol.foo=2", "protocol.foo"), ("dataset.nme=mnist", "dataset.nme")):
        with pytest.raises(UserError, match=f"unknown config key '{key}'"):
            config.check_choices([arg])
    config.check_choices(["pruning.timing.threshold=0.9", "dataset.train_size=5", "+foo=1", "hydra.verbose=true",
                          "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "dataset=mnist_rot",
                          "model=convnet", "model.kernel=5", "method=obd", "method.saliency.hessian=exact", "seeds=[1]"])  # fmt: skip


def test_store_that_cannot_be_written_is_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is not writable"):
        ResultStore.create(tmp_path / "file" / "store")
    proc = run_train(*TINY, f"results_dir={tmp_path / 'file' / 'store'}", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "is not writable" in proc.stderr


def test_data_or_cache_dir_that_is_a_file_is_refused_before_training(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NNCOMPRESS_DATA_DIR", str(tmp_path / "file"))
    with pytest.raises(UserError, match=f"^data_dir '{tmp_path}/file' is a file, not a folder$"):
        config.check_paths(composed())
    with pytest.raises(UserError, match="^cache_dir '.*' is a file, not a folder$"):
        config.check_paths(composed(f"data_dir={tmp_path}", f"cache_dir={tmp_path / 'file'}"))


def test_diverged_replicas_are_never_stored(tmp_path, results_dir):
    proc = run_train(*TINY, "seeds=[0,1]", "protocol.lr=1000", f"hydra.run.dir={tmp_path}")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "2 of 2 replica(s) not stored: mnist_seed0_ratio1 (diverged in epoch" in errors[0]
    assert not list(results_dir.glob("*.json")) and read_jsonl(tmp_path / "results.jsonl") == []


def test_replicas_that_learned_nothing_are_stored_flagged_and_said(tmp_path, results_dir):
    # One training sample: always answering its class is right every time, so no network beats chance.
    proc = run_train(*TINY, "dataset.train_size=1", "protocol.batch_size=1", "seeds=[0,1]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: 2 replica(s) learned nothing" in proc.stderr and "mnist_seed1_ratio1" in proc.stderr
    records = read_jsonl(tmp_path / "results.jsonl")
    assert [(r["learned"], r["chance_acc"]) for r in records] == [(False, 1.0), (False, 1.0)]
    assert len(list(results_dir.glob("*.json"))) == 2
    trained = run_train(*TINY, "seeds=[0]", f"hydra.run.dir={tmp_path}/b")
    (record,) = read_jsonl(tmp_path / "b" / "results.jsonl")
    assert record["learned"] and "learned nothing" not in trained.stderr


def test_sigterm_exits_non_zero_stores_nothing_half_done_and_a_rerun_finishes(tmp_path, results_dir):
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *TINY, "protocol.epochs=500", "seeds=[0,1]",
           f"hydra.run.dir={tmp_path}/a"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until training runs
        if line.startswith("epoch 2/"):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "stopped by SIGTERM" in err, err[-2000:]
    assert not list(results_dir.glob("*.json"))
    done = run_train(*TINY, "seeds=[0,1]", f"hydra.run.dir={tmp_path}/b")
    assert done.returncode == 0 and len(list(results_dir.glob("*.json"))) == 2


def test_sigterm_while_loading_data_exits_non_zero_in_one_line(tmp_path, results_dir):
    data = tmp_path / "data"
    data.mkdir()
    os.mkfifo(data / "mnist.npz")  # reading it blocks the run in its data loading until the test writes
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *TINY, f"data_dir={data}", f"hydra.run.dir={tmp_path}/a"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:  # a pipe opens for writing without blocking only once the run has it open to read
        try:
            writer = os.open(data / "mnist.npz", os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    os.close(writer)  # end of file: a run that ignored the signal fails its checksum instead of waiting
    _, err = proc.communicate(timeout=60)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert len(errors) == 1 and errors[0].startswith("error: stopped by SIGTERM: this job's replicas were not stored")
    assert not list(results_dir.glob("*.json"))


def test_damaged_store_entries_are_left_in_place_and_set_aside_only_on_repair(tmp_path, caplog):
    store = ResultStore(tmp_path)
    a, b, c = (config_key(k) for k in "abc")
    for key in (a, b, c):
        store.put(record(key))
    store.path(a).write_text(store.path(a).read_text()[:7])  # truncated
    store.path(b).write_text(json.dumps(record(c)))  # another entry's content
    assert a not in store and b not in store and c in store
    assert store.is_bad(a) and store.is_bad(b) and not store.is_bad(c)
    assert not (tmp_path / "damaged").exists() and store.path(a).exists()  # a reader moves nothing
    assert [r["key"] for r in store.records()] == [c]
    store.warn()
    assert [r.levelname for r in caplog.records if "left out" in r.getMessage()] == ["WARNING"]  # one for both
    store.set_aside(a)
    assert [p.name for p in (tmp_path / "damaged").iterdir()] == [f"{a}.json"]  # moved, never deleted


def record(key: str) -> dict:
    return {"key": key, "dataset": "mnist", "seed": 0, "ratio": 1.0, "test_acc": 0.5,
            "config": {"model": {"name": "mlp"}, "method": {"name": "none"}, "protocol": {"name": "fast"}, "dataset": {}}}  # fmt: skip


def test_results_are_standard_json():
    store = ResultStore("unused")
    with pytest.raises(ValueError):
        store.put(record(config_key("nan")) | {"lr": float("nan")})


def test_damaged_cache_file_is_removed_and_rebuilt(tmp_path):
    path = tmp_path / "variant.npz"
    np.savez(path, x=np.arange(3))
    assert load_cached(path)["x"].tolist() == [0, 1, 2]
    path.write_bytes(path.read_bytes()[:40])  # truncated
    assert load_cached(path) is None and not path.exists()


def test_interrupted_regeneration_cache_is_rebuilt_by_a_run(tmp_path, cache_dir):
    for f in cache_dir.glob("mnist_back_rand-*.npz"):
        f.write_bytes(b"not a zip")
    proc = run_train(*TINY, "dataset=mnist_back_rand", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(load_cached(f) is not None for f in cache_dir.glob("mnist_back_rand-*.npz"))


def test_claims_keep_two_runs_off_one_replica_and_stale_claims_are_taken_over(tmp_path):
    import socket

    store = ResultStore(tmp_path)
    key = {name: config_key(name) for name in ("live", "dead", "far", "old", "new")}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here, claims = socket.gethostname(), tmp_path / "claims"
    claims.mkdir()
    (claims / f"{key['live']}.claim").write_text(json.dumps({"pid": os.getppid(), "host": here}))
    (claims / f"{key['dead']}.claim").write_text(json.dumps({"pid": dead.pid, "host": here}))
    (claims / f"{key['far']}.claim").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    (claims / f"{key['old']}.claim").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    os.utime(claims / f"{key['old']}.claim", (time.time() - 3 * 86400,) * 2)
    with store.claims(list(key.values())) as busy:
        assert busy == {key["live"]: f"pid {os.getppid()} on {here}", key["far"]: "pid 1 on elsewhere"}
        mine = {"pid": os.getpid(), "host": here}
        assert all(json.loads((claims / f"{key[k]}.claim").read_text()) == mine for k in ("dead", "old", "new"))
        with store.claims([key["new"]]) as again:  # held, by this very process: busy, and left held on the way out
            assert again == {key["new"]: f"pid {os.getpid()} on {here}"}
        assert (claims / f"{key['new']}.claim").exists()
    assert sorted(p.stem for p in claims.iterdir()) == sorted([key["far"], key["live"]])  # ours released, others' kept


def test_two_identical_runs_started_together_train_each_replica_once(tmp_path, results_dir):
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *TINY, "seeds=[0,1,2,3]", "protocol.epochs=3"]
    runs = [subprocess.Popen([*cmd, f"hydra.run.dir={tmp_path}/{i}"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for i in range(2)]  # fmt: skip
    outs = [r.communicate(timeout=300)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outs
    trained = [rec["seed"] for i in range(2) if (tmp_path / f"{i}" / "results.jsonl").exists()
               for rec in read_jsonl(tmp_path / f"{i}" / "results.jsonl")]  # fmt: skip
    assert sorted(trained) == [0, 1, 2, 3]  # nothing twice, nothing lost
    assert len(list(results_dir.glob("*.json"))) == 4 and not list((results_dir / "claims").iterdir())
