"""Mid-run checkpoints (training/checkpoint.py): a job stopped by SIGTERM or SIGUSR2 writes its whole training state at
the end of the epoch it is in, rerunning the same command resumes from there and ends with exactly the records of a job
never stopped, and a finished job removes its checkpoint; a damaged one, or one of other replicas, is not used. The
SLURM preset requeues jobs at their time limit."""
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import pytest
import torch
from hydra import compose, initialize_config_dir

from nncompress import config

from nncompress.data.datasets import Splits
from nncompress.data.module import PopulationData
from nncompress.errors import UserError
from nncompress.results import ResultStore, read_jsonl
from nncompress.training.checkpoint import Checkpoints
from nncompress.training.module import PopulationClassifier
from nncompress.training.protocol import Protocol

from conftest import ROOT, run_train
from test_population_model import make

SMALL = ["dataset.train_size=600", "dataset.test_size=300", "model.hidden=20", "logger=none",
         "checkpoint_every_s=0.000001"]  # a checkpoint at the end of every epoch  # fmt: skip
# Steps fire on each replica's own training accuracy (as measured the epoch before) and training ends at its own peak:
# the four replicas end at different epochs, so the population is compacted (two of four left) while the others train.
PRUNING = [*SMALL, "method=magl1", "seeds=[0,1]", "ratio=[0.05,0.3]", "schedule.steps=4", "pruning.timing.first_epoch=2",
           "pruning.timing.every=6", "pruning.timing.threshold=0.97", "pruning.timing.trigger_lag=1",
           "pruning.timing.final_epochs=12", "pruning.timing.final=train_peak"]  # fmt: skip
# A HashedNet whose buckets are pruned in epochs 2 to 5 (20 epochs): stopped mid-way, its masks resume too.
HASHED = [*SMALL, "model=hashednet", "ratio=0.1", "dataset.val_size=100", "method=magl1", "pruning.keep=0.5",
          "schedule.steps=4", "pruning.timing.first_epoch=2", "pruning.timing.final_epochs=15"]  # fmt: skip


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """config -> (records, run folder, stdout) of its job run once to the end, never stopped (once a session)."""
    done = {}

    def run(overrides: list[str]):
        if tuple(overrides) not in done:
            where = tmp_path_factory.mktemp("uninterrupted")
            proc = run_train(*overrides, f"results_dir={where}/store", f"hydra.run.dir={where}/run")
            assert proc.returncode == 0, proc.stderr[-2000:]
            done[tuple(overrides)] = read_jsonl(where / "run" / "results.jsonl"), where / "run", proc.stdout
        return done[tuple(overrides)]

    return run


def comparable(records: list[dict]) -> list[dict]:
    """Records without what says where and how long a run ran: wall time, run folder, the store's path."""
    kept = [{k: v for k, v in r.items() if k not in ("wall_time_s", "run_dir")} for r in records]
    return [{**r, "config": {k: v for k, v in r["config"].items() if k != "results_dir"}} for r in kept]


def stopped(overrides: list[str], signum: int, after_epoch: int, run_dir) -> subprocess.CompletedProcess:
    """The job, sent `signum` once it has printed the line of epoch `after_epoch`."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "src" / "train.py"), *overrides, f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(f"epoch {after_epoch}/"):
            break
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + out, err)


def epochs_printed(stdout: str) -> list[int]:
    return [int(m) for m in re.findall(r"^epoch (\d+)/", stdout, re.MULTILINE)]


def test_a_pruning_job_stopped_by_sigterm_resumes_to_the_records_of_one_never_stopped(tmp_path, results_dir,
                                                                                       uninterrupted):  # fmt: skip
    reference, reference_dir, reference_out = uninterrupted(PRUNING)
    ends, last = sorted(r["epochs"] for r in reference), epochs_printed(reference_out)[-1]
    after = ends[1] + 1  # two replicas frozen, the other two trained apart (compacted) from then on
    assert ends[1] < ends[2] and after < ends[-1], ends  # replicas end apart, so the stop comes mid-run

    first = stopped(PRUNING, signal.SIGTERM, after, tmp_path / "a")
    (checkpoint,) = (results_dir / "checkpoints").glob("*.ckpt")
    errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
    assert first.returncode == 1 and "Traceback" not in first.stderr and len(errors) == 1, first.stderr[-2000:]
    saved = re.fullmatch(r"error: stopped by SIGTERM: this job's replicas were not stored; its state after epoch (\d+) "
                         r"is saved in (\S+): rerunning the same command resumes from there", errors[0])  # fmt: skip
    assert saved and saved[2] == str(checkpoint), errors[0]
    epoch = int(saved[1])
    assert after <= epoch < ends[-1] and epochs_printed(first.stdout)[-1] == epoch  # the epoch it was in, ended
    assert not list(results_dir.glob("*.json"))  # nothing stored

    resumed = run_train(*PRUNING, f"hydra.run.dir={tmp_path}/b")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from epoch {epoch} of 32: the checkpoint {checkpoint}" in resumed.stdout
    assert epochs_printed(resumed.stdout) == list(range(epoch + 1, last + 1))  # only the epochs left
    assert comparable(read_jsonl(tmp_path / "b" / "results.jsonl")) == comparable(reference)
    # the training step's state: replicas trained apart, and how many replica-epochs it computed in all
    computed = re.compile(r"replica-epochs computed: [\d,]+ of [\d,]+")
    assert computed.search(resumed.stdout)[0] == computed.search(reference_out)[0]
    history = [[{k: v for k, v in json.loads(line).items() if k != "saliency_time_s"}
                for line in (run / "pruning.jsonl").read_text().splitlines()] for run in (tmp_path / "b", reference_dir)]
    assert history[0] == history[1]  # the whole history of pruning steps, in the resumed run's folder
    assert not checkpoint.exists() and len(list(results_dir.glob("*.json"))) == 4


@pytest.fixture(scope="session")
def other_job_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint as a job writes it, of replicas no other test trains: a toy population fitted two epochs here."""
    path = tmp_path_factory.mktemp("other") / "other.ckpt"
    population, model = make([0], [1.0], False, "relu", "kaiming", sizes=(20, 16, 3))
    x = torch.randn(200, 20, generator=torch.Generator().manual_seed(0))
    empty = torch.empty(0, 20), torch.empty(0, dtype=torch.long)
    splits = Splits("toy", "synthetic", x, x[:, :3].argmax(1), *empty, *empty)
    data = PopulationData(splits, 20, population.seeds("data"))
    trainer = pl.Trainer(max_epochs=2, logger=False, callbacks=[Checkpoints(path, ["another job"], 1e-9)],
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(PopulationClassifier(model, population, Protocol(), 2), datamodule=data)
    return path


def test_a_hashednet_job_stopped_by_sigusr2_ignores_another_jobs_checkpoint_and_resumes_from_its_own(
    tmp_path, results_dir, uninterrupted, other_job_checkpoint
):
    reference = uninterrupted(HASHED)[0]
    checkpoint = ResultStore(results_dir).checkpoint_path([r["key"] for r in reference])
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(other_job_checkpoint, checkpoint)  # where this job looks: not used, then overwritten

    first = stopped(HASHED, signal.SIGUSR2, 4, tmp_path / "a")
    assert first.returncode == -signal.SIGUSR2, first.stderr[-2000:]  # the signal's own action, once checkpointed
    warning = f"warning: checkpoint {checkpoint} not used (another job's: other replicas); the job starts from epoch 0"
    assert warning in first.stderr.splitlines() and epochs_printed(first.stdout)[0] == 1  # from the start
    epoch = epochs_printed(first.stdout)[-1]
    assert 4 <= epoch < 20

    resumed = run_train(*HASHED, f"hydra.run.dir={tmp_path}/b")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from epoch {epoch} of 20" in resumed.stdout and "warning" not in resumed.stderr
    assert epochs_printed(resumed.stdout) == list(range(epoch + 1, 21))
    assert comparable(read_jsonl(tmp_path / "b" / "results.jsonl")) == comparable(reference)  # val_acc too
    assert not checkpoint.exists()


def test_a_checkpoint_is_used_only_when_it_reads_and_holds_the_jobs_replicas(tmp_path, other_job_checkpoint, caplog):
    assert Checkpoints(tmp_path / "none.ckpt", ["another job"], 0).resumable() is None  # none: nothing said
    own = Checkpoints(other_job_checkpoint, ["another job"], 0)
    assert own.resumable() == other_job_checkpoint and own.epochs == 2
    assert Checkpoints(other_job_checkpoint, ["other replicas"], 0).resumable() is None
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(other_job_checkpoint.read_bytes()[:-100])  # cut short
    assert Checkpoints(damaged, ["another job"], 0).resumable() is None
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)  # a checkpoint, not a job's
    assert Checkpoints(foreign, ["another job"], 0).resumable() is None
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]  # on stderr in a command
    assert [re.sub(r"\(.*\)", "(...)", line) for line in lines] == [
        f"warning: checkpoint {path} not used (...); the job starts from epoch 0"
        for path in (other_job_checkpoint, damaged, foreign)
    ]
    assert "another job's: other replicas" in lines[0] and "unreadable" in lines[1] and "of this version" in lines[2]


def test_a_second_stop_signal_acts_at_once():
    """The first is held until the epoch ends; a second goes to the handler the signal had before training."""
    received = []
    before = signal.signal(signal.SIGUSR2, lambda signum, frame: received.append(signum))
    handler = signal.getsignal(signal.SIGUSR2)
    checkpoints = Checkpoints(ROOT / "unused.ckpt", [], 0)
    try:
        checkpoints.on_train_start(None, None)
        signal.raise_signal(signal.SIGUSR2)
        assert received == [] and checkpoints.held == signal.SIGUSR2
        signal.raise_signal(signal.SIGUSR2)
        assert received == [signal.SIGUSR2] and signal.getsignal(signal.SIGUSR2) is handler
    finally:
        checkpoints.restore_handlers()  # SIGTERM's too
        signal.signal(signal.SIGUSR2, before)


def test_the_slurm_preset_requeues_jobs_and_a_launcher_is_ours_or_a_plugins():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        launcher = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s >= 120  # requeued, with time to end an epoch
    config.check_choices(["hydra/launcher=slurm"])
    config.check_choices(["hydra/launcher=submitit_slurm"])
    with pytest.raises(UserError, match=r"unknown hydra/launcher 'slrum' \(choose from: basic, joblib, slurm, "
                                        r"submitit_local, submitit_slurm\)"):  # fmt: skip
        config.check_choices(["hydra/launcher=slrum"])
