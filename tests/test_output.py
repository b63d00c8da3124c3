"""What a user sees: a quiet run with informative epoch lines, a sweep that ends with one table, a safe `make clean`."""
import subprocess

from conftest import ROOT

from test_sweeps import multirun

NOISE = ("GPU available", "TPU available", "litlogger", "LeafSpec", "log_every_n_steps", "Trainer.fit` stopped")


def test_sweep_is_quiet_shows_eta_and_accuracy_and_ends_with_one_table(tmp_path):
    proc = multirun(tmp_path, tmp_path / "sweep", "dataset.train_size=1000", "dataset.test_size=500", "logger=csv",
                    "method=magl1", "ratio=0.5", "seeds=[0,1]", "pruning.timing.first_epoch=1", "schedule.steps=1",
                    "pruning.timing.final_epochs=1", "model.hidden=20,30")  # fmt: skip
    out = proc.stdout + proc.stderr
    assert not [n for n in NOISE if n in out], out
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 4 and all("elapsed  ETA " in line for line in epochs)
    assert "train acc 0." in epochs[1]  # measured by the pruning callback in the second epoch
    table = proc.stdout.split("mean and std over each job's replicas\n")[1].splitlines()
    assert table[0].split()[:5] == ["job", "dataset", "model", "method", "hidden"] and len(table) == 3
    assert [row.split()[4] for row in table[1:]] == ["20", "30"]


def test_make_clean_keeps_the_results_store(tmp_path):
    for path in ("multirun/results/abc.json", "multirun/2026-01-01/10-00-00/0/results.jsonl", "outputs/x/y.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    make = ["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path)]
    subprocess.run([*make, "clean"], check=True, env={"PATH": "/usr/bin:/bin"})
    assert [p.name for p in (tmp_path / "multirun").iterdir()] == ["results"] and not (tmp_path / "outputs").exists()
    assert (tmp_path / "multirun/results/abc.json").exists()
    subprocess.run([*make, "clean-results"], check=True, env={"PATH": "/usr/bin:/bin"})
    assert not (tmp_path / "multirun/results").exists()
