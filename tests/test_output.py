"""What a user sees: a quiet run with informative epoch lines (a bar on a terminal), W&B runs named by what a sweep
varies, a sweep that ends with one table, every line also in the run's train.log, a safe `make clean`."""
import io
import json
import logging
import statistics
import subprocess
from itertools import product
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT
from nncompress.results import config_key
from nncompress.sweep_summary import sweep_table
from nncompress.training import progress
from nncompress.training.pruning import PruningCallback

from test_report import fake_record
from test_sweeps import multirun
from wandb_offline import offline_run

NOISE = ("GPU available", "TPU available", "litlogger", "LeafSpec", "log_every_n_steps", "Trainer.fit` stopped")


SWEEP = ["method=magl1,obd", "ratio=0.1,0.5", "dataset.train_size=600", "dataset.test_size=300", "logger=wandb",
         "pruning.timing.first_epoch=1", "schedule.steps=1", "pruning.timing.final_epochs=1"]  # 4 jobs of 2 epochs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The 2 methods x 2 ratios sweep, once for the tests below: (its process, its folder)."""
    tmp = tmp_path_factory.mktemp("sweep")
    return multirun(tmp, tmp / "sweep", *SWEEP, env={"WANDB_MODE": "offline"}), tmp / "sweep"


def table_rows(table: str) -> list[list[str]]:
    """The rows of a sweep's table, split into their cells (none holds a space)."""
    lines = table.splitlines()
    assert lines[0].split() == ["jobs", "method", "model", "size", "dataset", "protocol", "ratio", "n", "test", "acc",
                                "(%)", "std", "parameters"] and set(lines[1]) == {"-", " "}  # fmt: skip
    return [line.split() for line in lines[2:] if line.strip()]


def expected_rows(sweep_dir: Path) -> dict:
    """(method, ratio) -> (jobs, n, mean, std, parameters) computed from the jobs' results.jsonl alone."""
    cells = {}
    for path in sweep_dir.glob("*/results.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            cells.setdefault((r["config"]["method"]["name"], r["ratio"]), []).append((path.parent.name, r))
    return {cell: (",".join(sorted({job for job, _ in got})), len(got), statistics.mean(100 * r["test_acc"] for _, r in got),
                   statistics.stdev(100 * r["test_acc"] for _, r in got) if len(got) > 1 else None,
                   statistics.mean(r["parameters"] for _, r in got)) for cell, got in cells.items()}  # fmt: skip


def check_table(rows: list[list[str]], expected: dict) -> None:
    assert len(rows) == len(expected)
    for jobs, method, model, size, dataset, protocol, ratio, n, acc, std, parameters in rows:
        want_jobs, want_n, want_acc, want_std, want_parameters = expected[(method, float(ratio))]
        assert (jobs, int(n), float(acc)) == (want_jobs, want_n, pytest.approx(want_acc, abs=0.005))
        assert std == "—" if want_std is None else float(std) == pytest.approx(want_std, abs=0.005)
        assert int(parameters.replace(",", "")) == round(want_parameters)


def test_the_sweep_table_has_a_row_per_replica_group_with_its_own_mean_and_std(tmp_path):
    jobs = {0: [("magl1", 0.1, {0: 0.91, 1: 0.95, 2: 0.96}), ("magl1", 0.01, {0: 0.55, 1: 0.62, 2: 0.71})],  # 2 ratios
            1: [("obd", 0.1, {0: 0.93})], 2: [("obd", 0.1, {1: 0.89})]}  # one replica group, over two jobs
    for job, cells in jobs.items():
        run_dir = tmp_path / "sweep" / str(job)
        run_dir.mkdir(parents=True)
        records = [{**fake_record(method, 100, "mnist", ratio, seed, acc), "parameters": 8050 if ratio == 0.1 else 904,
                    "run_dir": str(run_dir)} for method, ratio, accs in cells for seed, acc in accs.items()]  # fmt: skip
        (run_dir / "results.jsonl").write_text("".join(json.dumps({**r, "key": config_key(r["key"])}) + "\n" for r in records))
    rows = table_rows(sweep_table(tmp_path / "sweep"))
    check_table(rows, expected_rows(tmp_path / "sweep"))  # each group's n, mean and std, from the files alone
    assert [(r[0], r[1], r[6], r[7]) for r in rows] == [("0", "magl1", "0.1", "3"), ("0", "magl1", "0.01", "3"),
                                                        ("1,2", "obd", "0.1", "2")]  # fmt: skip
    assert rows[0][8:] == ["94.00", f"{statistics.stdev([91, 95, 96]):.2f}", "8,050"]  # never pooled across ratios


def test_a_sweep_with_everything_already_stored_ends_with_one_line_not_an_error(tmp_path):
    """Its jobs train nothing and write no results.jsonl: the summary says so (not a store it cannot read)."""
    (tmp_path / "sweep" / "0").mkdir(parents=True)
    assert sweep_table(tmp_path / "sweep") == (f"no results.jsonl under {tmp_path / 'sweep'} (jobs with everything "
                                               "already stored write none)")  # fmt: skip


def test_sweep_is_quiet_shows_eta_and_ends_with_one_row_per_method_and_ratio(sweep):
    proc, sweep_dir = sweep
    out = proc.stdout + proc.stderr
    assert not [n for n in NOISE if n in out], out
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]  # one job at a time: no prefix
    assert len(epochs) == 4 * 2 and all("elapsed  ETA " in line for line in epochs)
    assert "train acc 0." in epochs[1]  # measured by the pruning callback in the second epoch
    rows = table_rows(proc.stdout.split("mean and std over its n replicas\n")[1])
    assert [(r[1], r[6]) for r in rows] == [("magl1", "0.1"), ("magl1", "0.5"), ("obd", "0.1"), ("obd", "0.5")]  # job order
    assert {(r[2], r[3], r[4], r[7], r[9]) for r in rows} == {("mlp", "h100", "mnist", "1", "—")}  # one replica each
    check_table(rows, expected_rows(sweep_dir))
    replica_rows = [line for line in proc.stdout.splitlines() if line.startswith("seed=0 ratio=")]  # each job's table
    assert len(replica_rows) == 4 and all(50 < float(line.split()[2]) <= 100 for line in replica_rows)  # in percent too


def test_a_sweeps_wandb_runs_are_named_by_method_and_ratio(sweep):
    proc, sweep_dir = sweep
    runs = {path.parent.parent.name: offline_run(path) for path in sweep_dir.glob("*/wandb/offline-run-*")}
    expected = {str(job): f"adhoc/{m}/mnist/h100/r{q}" for job, (m, q) in enumerate(product(["magl1", "obd"], ["0.1", "0.5"]))}
    assert {job: run["name"] for job, run in runs.items()} == expected  # the constant overrides are in no name
    for job, run in runs.items():
        method, ratio = expected[job].split("/")[1], expected[job].split("/r")[1]
        assert run["group"] == expected[job] and {method, f"ratio={ratio}", "mlp", "mnist", "fast"} <= run["tags"]
        assert f"W&B run '{run['name']}' in {sweep_dir / job / 'wandb'}" in proc.stdout


def test_a_runs_train_log_holds_what_it_printed(sweep):
    proc, sweep_dir = sweep
    for job in range(4):
        log = (sweep_dir / str(job) / "train.log").read_text()
        assert log in proc.stdout  # the same lines as on the console, in one piece
        lines = log.splitlines()
        assert [line.split("  ")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
        table = lines.index(next(line for line in lines if line.startswith("replica ")))
        assert lines[table + 2].startswith("seed=0 ratio=") and lines[-1].startswith("W&B run 'adhoc/")


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


def run_epochs(bar, monkeypatch) -> SimpleNamespace:
    """Three epochs of a 20-epoch run through `bar`: 50 s (with setup), then 10 s each; pruning known from the third."""
    clock = iter([0.0, 50.0, 60.0, 70.0])
    monkeypatch.setattr(progress, "time", SimpleNamespace(time=lambda: next(clock)))  # progress's clock alone
    trainer = SimpleNamespace(max_epochs=20, progress_bar_metrics={}, callbacks=[])
    bar.RECENT = 2
    bar.on_train_start(trainer, None)
    for epoch in range(2):
        trainer.current_epoch = epoch
        bar.on_train_epoch_end(trainer, None)
    trainer.callbacks, trainer.current_epoch = [PruningCallback(Schedule())], 2
    bar.on_train_epoch_end(trainer, None)
    return trainer


def logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == progress.__name__]


def test_eta_counts_the_expected_epochs_at_the_recent_pace_and_says_the_longest(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    run_epochs(progress.EpochLines(), monkeypatch)
    out = [r.getMessage() for r in logged(caplog)]
    assert out[0] == "epoch 1/20  50 s elapsed  ETA 15 min 50 s"  # no pruning: all 20 epochs, 19 left at 50 s
    assert out[1].endswith("1 min 00 s elapsed  ETA 9 min 00 s")  # 18 left at (50 + 10) / 2 s
    assert out[2].endswith("1 min 10 s elapsed  ETA 30 s (at most 1 min 30 s)")  # 3 (9) left at 10 s
    assert all(getattr(r, "console", True) for r in logged(caplog))  # for the console and train.log alike


def test_a_parallel_jobs_lines_start_with_its_number(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    run_epochs(progress.progress_callback(parallel=(7, 2)), monkeypatch)  # not a terminal: lines
    assert [r.getMessage().split("  ")[0] for r in logged(caplog)] == ["#7 epoch 1/20", "#7 epoch 2/20", "#7 epoch 3/20"]


def test_on_a_terminal_a_bar_shows_the_epochs_and_eta_and_the_lines_go_to_the_file_only(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    screen = io.StringIO()
    bar = progress.EpochBar(job=3, slot=1, stream=screen)
    trainer = run_epochs(bar, monkeypatch)
    drawn = screen.getvalue().split("\r")[-1]  # what the bar's line shows now: the line, then the bar
    line, filled, end = drawn.split("|")
    assert line == "#3 epoch 3/20  1 min 10 s elapsed  ETA 30 s (at most 1 min 30 s) " and filled.strip(" ") != ""
    assert end == "\x1b[A" and bar.bar.n == 3 and bar.bar.total == 20  # drawn a line down (slot 1), then back up
    records = logged(caplog)
    assert [r.getMessage() for r in records][-1] == line.strip() and not any(getattr(r, "console", True) for r in records)
    bar.on_train_end(trainer, None)
    assert bar.bar.total == 3  # a run that ended before max_epochs shows as done
    assert screen.getvalue().split(line)[-1].split("\r")[-1].strip() in ("", "\x1b[A")  # a parallel job's bar goes
