"""What a user sees: a quiet run with informative epoch lines, a sweep that ends with one table, a safe `make clean`."""
import subprocess
from types import SimpleNamespace

from conftest import ROOT
from nncompress.training import progress
from nncompress.training.pruning import PruningCallback

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


def test_make_clean_keeps_the_results_store_and_the_artefacts_its_entries_name(tmp_path):
    """Run in a copy of a checkout's layout (a temporary folder): the store keeps its entries and their artefacts."""
    kept = ("multirun/results/0123456789abcdef.json", "multirun/results/artefacts/0123456789abcdef.safetensors")
    for path in (*kept, "multirun/2026-01-01/10-00-00/0/results.jsonl", "outputs/x/y.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    make = ["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path)]
    subprocess.run([*make, "clean"], check=True, env={"PATH": "/usr/bin:/bin"})
    assert [p.name for p in (tmp_path / "multirun").iterdir()] == ["results"] and not (tmp_path / "outputs").exists()
    assert all((tmp_path / path).exists() for path in kept)
    subprocess.run([*make, "clean-results"], check=True, env={"PATH": "/usr/bin:/bin"})
    assert not (tmp_path / "multirun/results").exists()


class Schedule:
    """Pruning that expects the run to last 6 epochs, 12 at most."""

    measured_train_acc = None

    def end_estimate(self, epochs_done):
        return 6.0, 12


def test_eta_counts_the_expected_epochs_at_the_recent_pace_and_says_the_longest(monkeypatch, capsys):
    clock = iter([0.0, 50.0, 60.0, 70.0])  # start; the first epoch (with setup) 50 s, then 10 s each
    monkeypatch.setattr(progress.time, "time", lambda: next(clock))
    lines, trainer = progress.EpochLines(), SimpleNamespace(max_epochs=20, progress_bar_metrics={}, callbacks=[])
    lines.RECENT = 2
    lines.on_train_start(trainer, None)
    for epoch in range(2):
        trainer.current_epoch = epoch
        lines.on_train_epoch_end(trainer, None)
    trainer.callbacks, trainer.current_epoch = [PruningCallback(Schedule())], 2
    lines.on_train_epoch_end(trainer, None)
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("50 s elapsed  ETA 15 min 50 s")  # no pruning: all 20 epochs, 19 left at 50 s
    assert out[1].endswith("1 min 00 s elapsed  ETA 9 min 00 s")  # 18 left at (50 + 10) / 2 s
    assert out[2].endswith("1 min 10 s elapsed  ETA 30 s (at most 1 min 30 s)")  # 3 (9) left at 10 s
