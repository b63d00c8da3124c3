"""The command line as a user meets it: one-line errors, help and completion, a full run, determinism, the README
command."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nncompress.results import read_jsonl

from conftest import ROOT, DATA_DIR, TINY, run_python, run_train


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset=mnist_foo"], "unknown dataset 'mnist_foo' (choose from: mnist, mnist_back_image"),
        (["-m", "protocol=fast,slow"], "unknown protocol 'slow'"),
        (["ratio=0"], "ratio must be in (0, 1]"),
        (["ratio=1.5"], "ratio must be in (0, 1]"),
        (["ratio=[0.5,-0.1]"], "ratio must be in (0, 1]"),
        (["model.hidden=0"], "model.hidden must be at least 1, got 0"),
        (["data_dir=/nonexistent/dir"], "data_dir '/nonexistent/dir' does not exist"),
        (["dataset=mnist_rot", "dataset.source=original"], "mnist_rot: source=original needs mnist_rotation_new.zip"),
        (["model=convnet", "method=obd"], "model=convnet trains as it is: use method=none"),
        (["model=hashednet", "method=obd"], "method=obd on model=hashednet removes buckets (its ratio sizes them): "
                                            "pruning.keep must be the fraction kept, in (0, 1), got 1"),
        (["model=hashednet", "method=obs", "pruning.keep=0.5"], "method=obs reads each layer's inputs and rewrites"),
        (["method=magl1", "pruning.keep=0.5"], "with method=magl1 model=mlp the ratio is what pruning keeps"),
        (["model=hashednet", "pruning.keep=0.5"], "with method=none model=hashednet nothing is pruned"),
        (["model=convnet", "ratio=0.5"], "model=convnet has no ratio"),
        (["model=convnet", "model.kernel=26", "model.pool=4"], "kernel 26, stride 1 and pool 4 leave no feature map of a 28-pixel image"),
        (["protocol.lr_schedule=cos"], "unknown protocol.lr_schedule 'cos' (choose from: inv_sqrt, cosine, constant)"),
        (["method=magl1", "pruning.scope=row"], "unknown pruning.scope 'row' (choose from: global, layer)"),
        (["precision=16-mixed"], "unknown precision '16-mixed' (choose from: 32-true, bf16-mixed)"),
        (["compact=maybe"], "compact must be true or false, got 'maybe'"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, overrides, message):
    proc = run_train(*overrides, *TINY, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0
    assert lines == [lines[0]] and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(tmp_path.rglob("results.jsonl"))


def test_help_and_shell_completion_are_answered_without_the_pre_check_or_torch(tmp_path):
    """`--help` and shell completion are Hydra's to answer from the configs alone: neither waits for torch and
    Lightning (seconds of imports: a poisoned copy of each here) nor trips the pre-check on Hydra's own arguments."""
    for name in ("torch", "pytorch_lightning"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('imported to answer a question Hydra answers alone')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    shown = run_train("--help", env=env, fresh=True)
    assert shown.returncode == 0 and "protocol: convnet, fast, hashednet, paper" in shown.stdout, shown.stderr
    install = run_train("-sc", "install=bash", env=env, fresh=True)
    assert install.returncode == 0 and "complete -o nospace -o default -F hydra_bash_completion" in install.stdout
    query = run_train("-sc", "query=bash", env={**env, "COMP_LINE": "python src/train.py proto"}, fresh=True)
    assert query.returncode == 0 and query.stdout.split() == ["protocol.", "protocol="], query.stderr
    job = run_train("install=bash", env=env, fresh=True)  # a job, though: pre-checked, which needs no torch either
    assert job.returncode != 0 and job.stderr == "error: unknown config key 'install' (a new key needs a +: +install=...)\n"


def test_help_read_in_part_ends_without_a_traceback():
    """`--help | head -1`: the reader has closed the pipe before the help is written; the command ends quietly."""
    proc = subprocess.Popen([sys.executable, ROOT / "src" / "train.py", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)  # fmt: skip
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1 and proc.stderr.read() == b""


def test_checksum_mismatch_is_one_line_error(tmp_path):
    data = bytearray((DATA_DIR / "mnist.npz").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "mnist.npz").write_bytes(bytes(data))
    proc = run_train(*TINY, f"data_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "checksum mismatch" in lines[0]
    assert not list(tmp_path.rglob("results.jsonl"))
    assert (tmp_path / "run" / "train.log").read_text().splitlines()[-1] == lines[0]  # the run's log says why it ended


def train_tiny(run_dir, *extra, fresh=False):
    proc = run_train(*TINY, "seeds=[0,1]", "save_model=true", f"hydra.run.dir={run_dir}", *extra, fresh=fresh)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_end_to_end_run_writes_results_per_replica(tmp_path):
    proc = train_tiny(tmp_path / "a", "dataset.val_size=200")
    records = read_jsonl(tmp_path / "a" / "results.jsonl")
    assert [(r["seed"], r["ratio"]) for r in records] == [(0, 1.0), (1, 1.0)]
    for r in records:
        assert r["dataset"] == "mnist" and r["source"] == "original"
        assert r["nonzero_weights"] == r["total_weights"] == 784 * 100 + 100 * 10 and r["biases"] == 110
        assert 0.5 < r["test_acc"] <= 1 and 0.5 < r["train_acc"] <= 1 and 0 <= r["val_acc"] <= 1
        assert r["epochs"] == 2 and r["population_size"] == 2 and r["wall_time_s"] > 0
        assert r["config"]["seeds"] == [r["seed"]] and r["config"]["dataset"]["train_size"] == 1000
        assert len(r["key"]) == 16
    assert records[0]["key"] != records[1]["key"]
    assert "seed=1 ratio=1" in proc.stdout  # the per-replica table
    state = torch.load(tmp_path / "a" / "model.pt")["state_dict"]
    assert state["layers.0.weight"].shape == (2, 784, 100)


def test_same_seed_gives_bit_identical_results(tmp_path):
    train_tiny(tmp_path / "a", "common_random_numbers=true", "ratio=[1.0]")
    # in a new interpreter (a fresh hash seed, no state of the warm one), as a user's second run would be
    train_tiny(tmp_path / "b", "common_random_numbers=true", "ratio=[1.0]", "resume=false", fresh=True)
    a, b = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (read_jsonl(tmp_path / d / "results.jsonl") for d in "ab")
    assert [r["test_acc"] for r in ra] == [r["test_acc"] for r in rb]
    assert not torch.equal(a["layers.0.weight"][0], a["layers.0.weight"][1])  # the two seeds differ


def test_bf16_mixed_precision_trains_float32_weights_with_bfloat16_matmuls(tmp_path):
    train_tiny(tmp_path / "a", "ratio=[1.0]")
    train_tiny(tmp_path / "b", "ratio=[1.0]", "precision=bf16-mixed")
    a, b = (torch.load(tmp_path / d / "model.pt")["state_dict"] for d in "ab")
    assert b["layers.0.weight"].dtype == torch.float32  # master weights and optimizer stay float32
    assert not torch.equal(a["layers.0.weight"], b["layers.0.weight"])  # the matmuls did run in bfloat16
    ra, rb = (read_jsonl(tmp_path / d / "results.jsonl") for d in "ab")
    for x, y in zip(ra, rb):
        assert y["config"]["precision"] == "bf16-mixed" and x["key"] != y["key"]
        assert abs(x["test_acc"] - y["test_acc"]) < 0.03 and y["test_acc"] > 0.5


def test_readme_run_command_with_default_wandb_logger(tmp_path):
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    args = "dataset.train_size=1000 dataset.test_size=500 protocol.epochs=1 " f"hydra.run.dir={tmp_path}/run"
    proc = subprocess.run(["make", "run", f"ARGS={args}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(read_jsonl(tmp_path / "run" / "results.jsonl")) == 1
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))  # W&B offline by default


@pytest.mark.parametrize("method", ["obd", "magl1", "magl2"])
def test_pruning_run_end_to_end(tmp_path, method):
    schedule = ["pruning.timing.first_epoch=1", "pruning.timing.final_epochs=1", "schedule.steps=3"]
    proc = run_train(*TINY, f"method={method}", "ratio=[0.1,0.01]", "histogram_epochs=[2]", *schedule,
                     f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_jsonl(tmp_path / "results.jsonl")
    total = 784 * 100 + 100 * 10
    assert [r["ratio"] for r in records] == [0.1, 0.01]
    for r in records:
        assert r["nonzero_weights"] == round(r["ratio"] * total) and r["achieved_ratio"] == r["nonzero_weights"] / total
        assert r["pruning_steps"] == 3 and r["epochs"] == 1 + 2 + 1 and r["config"]["method"]["name"] == method
    steps = read_jsonl(tmp_path / "pruning.jsonl")
    assert [(s["ratio"], s["step"], s["epoch"]) for s in steps] == [(q, i, i) for i in (1, 2, 3) for q in (0.1, 0.01)]
    assert steps[-1]["sparsity"] == pytest.approx(0.99, abs=1 / total)
    assert all({"train_acc_before", "train_acc_after", "saliency_time_s"} <= set(s) for s in steps)
    hist = np.load(tmp_path / "histograms" / "epoch2.npz")
    assert hist["counts"].shape == (2, 200) and hist["counts"][1].sum() < hist["counts"][0].sum()


def test_method_none_refuses_compression_ratios(tmp_path):
    proc = run_train(*TINY, "ratio=0.5", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0 and "method=none keeps every weight" in proc.stderr


def test_hashednet_and_convnet_runs(tmp_path):
    proc = run_train(*TINY, "model=hashednet", "ratio=[1.0,0.1]", f"hydra.run.dir={tmp_path}/h")
    assert proc.returncode == 0, proc.stderr[-3000:]
    hashed = read_jsonl(tmp_path / "h" / "results.jsonl")
    assert [r["parameters"] for r in hashed] == [79400 + 110, 7840 + 100 + 110]
    proc = run_train(*TINY, "model=convnet", "protocol=convnet", "protocol.epochs=1", "seeds=[0,1]",
                     "model.kernel=7", "model.channels=4", "model.pool=3", f"hydra.run.dir={tmp_path}/c")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    conv = read_jsonl(tmp_path / "c" / "results.jsonl")
    assert [r["parameters"] for r in conv] == [4 * 49 + 4 + 4 * 7 * 7 * 10 + 10] * 2
    assert conv[0]["test_acc"] != conv[1]["test_acc"] and all(r["test_acc"] > 0.3 for r in conv)


def test_convnet_searches_and_pareto(tmp_path):
    tiny = [*TINY, "protocol.epochs=1", "dataset.val_size=200", "seeds=[0]"]
    grid = run_train("-m", "+experiment=convnet_grid", *tiny, "model.kernel=5,9", "model.channels=4",
                     "model.stride=2", "model.pool=2", "model.dropout=0", f"hydra.sweep.dir={tmp_path}/grid")  # fmt: skip
    assert grid.returncode == 0, grid.stderr[-3000:]
    assert len(list((tmp_path / "grid").rglob("results.jsonl"))) == 2
    optuna = run_train("-m", "+experiment=convnet_optuna", *tiny, "hydra.sweeper.n_trials=2",
                       f"hydra.sweep.dir={tmp_path}/optuna")  # fmt: skip
    assert optuna.returncode == 0, optuna.stderr[-3000:]
    assert "solutions" in (tmp_path / "optuna" / "optimization_results.yaml").read_text()
    pareto = run_python("-m", "nncompress.pareto", tmp_path, "--out", tmp_path / "f.csv")
    assert pareto.returncode == 0, pareto.stderr
    out = pareto.stdout
    assert "4 settings" in out and (tmp_path / "f.csv").exists()


def test_population_over_datasets_trains_each_replica_as_alone_and_resumes_what_is_missing(tmp_path, results_dir):
    """`dataset.name=[...]` trains one population over datasets; each replica's record equals its run alone; a
    store holding one dataset's replicas makes the mixed run train only the other's."""
    pruned = ["method=obd", "ratio=[0.5,0.05]", "seeds=[0]", "pruning.timing.first_epoch=1", "schedule.steps=2",
              "pruning.timing.final_epochs=1", "logger=none"]  # fmt: skip
    alone = {}
    for name in ("mnist", "mnist_back_rand"):
        run = tmp_path / name
        train_tiny(run, f"dataset={name}", f"results_dir={tmp_path}/store_{name}", *pruned)
        alone |= {(r["dataset"], r["ratio"]): r for r in read_jsonl(run / "results.jsonl")}
    train_tiny(tmp_path / "mixed", "dataset.name=[mnist,mnist_back_rand]", *pruned)
    mixed = read_jsonl(tmp_path / "mixed" / "results.jsonl")
    assert [(r["dataset"], r["ratio"]) for r in mixed] == list(alone) and {r["population_size"] for r in mixed} == {4}
    for r in mixed:
        same = alone[r["dataset"], r["ratio"]]
        assert r["key"] == same["key"] and r["config"]["dataset"]["name"] == r["dataset"]
        for field in ("test_acc", "train_acc", "nonzero_weights", "epochs", "source"):
            assert r[field] == same[field], field
    store = tmp_path / "store_mnist"  # holds the mnist replicas only
    before = {p.name: p.read_text() for p in store.glob("*.json")}
    proc = train_tiny(tmp_path / "resumed", "dataset.name=[mnist,mnist_back_rand]", f"results_dir={store}", *pruned)
    assert "resuming: 2 of 4 replica(s)" in proc.stdout
    resumed = read_jsonl(tmp_path / "resumed" / "results.jsonl")
    assert [r["dataset"] for r in resumed] == ["mnist_back_rand"] * 2 and resumed[0]["population_size"] == 2
    assert [r["test_acc"] for r in resumed] == [alone["mnist_back_rand", q]["test_acc"] for q in (0.5, 0.05)]
    assert len(list(store.glob("*.json"))) == 4 and all((store / n).read_text() == t for n, t in before.items())
