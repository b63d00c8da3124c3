"""The package as a user installs it: a wheel in a fresh environment runs and reports from a folder outside the
checkout; an extra a config asks for is said in one line when missing; `logger=tensorboard`; `make help`."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from filelock import FileLock

from nncompress.results import read_jsonl

from conftest import DATA_DIR, ROOT, TINY, run_train

EXTRAS = ("wandb", "tensorboard", "optuna", "hydra_plugins")  # what the extras install that the code looks up


def core_dependencies(folder: Path) -> Path:
    """This environment's packages but the extras' and nncompress itself, as a folder of links: what a fresh
    environment gets from `pip install nncompress` (without extras), here without a download."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if entry.suffix == ".pth" or name.startswith(("__editable__", "nncompress", *EXTRAS)):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel built from this checkout, its core dependencies linked in."""
    tmp = tmp_path_factory.mktemp("install")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # one build at a time: two pytest workers building from one checkout would share its build/ folder
    with FileLock(tmp_path_factory.getbasetemp().parent / "wheel.lock"):
        subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "wheel", ROOT], check=True,
                       capture_output=True)  # fmt: skip
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "core.pth").write_text(f"{core_dependencies(tmp / 'core')}\n")
    wheel = next((tmp / "wheel").glob("nncompress-*.whl"))
    subprocess.run([*pip, "--python", venv / "bin" / "python", "install", "--no-deps", wheel], check=True,
                   capture_output=True)  # fmt: skip
    return venv


def command(venv: Path, *argv, cwd: Path) -> subprocess.CompletedProcess:
    """A console script of the installed package, run where a user would: outside the checkout, without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"NNCOMPRESS_DATA_DIR": str(DATA_DIR)}
    return subprocess.run([venv / "bin" / argv[0], *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def test_a_wheel_in_a_fresh_environment_trains_and_reports_outside_the_checkout(installed, tmp_path):
    home = tmp_path / "elsewhere"
    home.mkdir()
    where = command(installed, "python", "-c", "import nncompress.resources as r; print(r.CONF_DIR, r.commit())",
                    cwd=home)  # fmt: skip
    conf_dir, version = where.stdout.split(maxsplit=1)
    assert Path(conf_dir).is_relative_to(installed) and version.strip() == "nncompress 0.1.0", where.stdout
    shown = command(installed, "nncompress-train", "--help", cwd=home)
    assert shown.returncode == 0 and "logger: csv, none, tensorboard, wandb" in shown.stdout, shown.stderr
    store = home / "store"
    run = command(installed, "nncompress-train", *TINY[:-1], "logger=csv", "seeds=[0,1]", f"results_dir={store}",
                  cwd=home)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (log,) = home.glob("outputs/*/*/train.log")  # Hydra's run folder, under the working directory
    assert "mnist (original), 2 replica(s)" in log.read_text()
    records = read_jsonl(log.parent / "results.jsonl")
    assert len(records) == 2 and all(0.5 < r["test_acc"] <= 1 for r in records)
    report = command(installed, "nncompress-report", "--results", store, "--out", home / "reports", cwd=home)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (home / "reports" / "index.html").is_file() and "mlp" in (home / "reports" / "summary.md").read_text()


@pytest.mark.parametrize("overrides, message", [
    ([], "logger=wandb needs the wandb extra: pip install 'nncompress[wandb]' (or logger=csv)"),
    (["logger=tensorboard"], "logger=tensorboard needs the tensorboard extra: pip install 'nncompress[tensorboard]'"),
    (["-m", "logger=csv", "hydra/sweeper=optuna"], "hydra/sweeper=optuna needs the optuna extra"),
    (["-m", "logger=csv", "+experiment=convnet_optuna"], "hydra/sweeper=optuna needs the optuna extra"),
    (["-m", "logger=csv", "hydra/launcher=slurm"], "hydra/launcher=slurm needs the cluster extra"),
])  # fmt: skip
def test_an_extra_not_installed_is_one_line_before_training(installed, tmp_path, overrides, message):
    proc = command(installed, "nncompress-train", *TINY[:-1], *overrides, f"results_dir={tmp_path}/store",
                   cwd=tmp_path)  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "store").exists()


def test_tensorboard_logger_writes_the_runs_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    proc = run_train(*TINY[:-1], "logger=tensorboard", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = read_jsonl(tmp_path / "results.jsonl")
    scalars = {}
    for path in (tmp_path / "tensorboard").rglob("events.out.tfevents.*"):
        events = EventAccumulator(str(path))
        events.Reload()
        scalars |= {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert len(scalars["train/loss"]) == 2  # one per epoch
    assert scalars["test/acc_mean"][-1] == pytest.approx(record["test_acc"], abs=1e-6)


def test_make_help_lists_every_target():
    make = (ROOT / "Makefile").read_text()
    phony = next(line for line in make.splitlines() if line.startswith(".PHONY:")).split()[1:]
    shown = subprocess.run(["make", "-s", "-C", ROOT, "help"], capture_output=True, text=True, check=True).stdout
    listed = [line.split()[0] for line in shown.splitlines() if line.strip()]
    assert sorted(listed) == sorted(phony) and all(len(line.split()) > 1 for line in shown.splitlines())
