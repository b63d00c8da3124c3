"""A job's W&B labels carry what its sweep varies (hydra_job.swept, from Hydra's own record of the sweep), and a job
knows when it runs beside others (hydra_job.parallel)."""
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from conftest import ROOT
from nncompress import hydra_job
from nncompress.loggers import run_labels


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.fixture
def job(tmp_path):
    """Makes a composed config the running Hydra job's, as a multirun's job in `tmp_path` (its sweep folder)."""

    def running(cfg, launcher: dict | None = None, num: int = 0):
        with open_dict(cfg):
            cfg.hydra.mode, cfg.hydra.sweep.dir, cfg.hydra.job.num = RunMode.MULTIRUN, str(tmp_path), num
            if launcher:
                cfg.hydra.launcher = launcher
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield running
    HydraConfig.instance().cfg = None


def test_a_command_line_sweep_names_its_values_and_no_constant(job, tmp_path):
    # Hydra's basic sweeper keeps what it was asked in the sweep folder's multirun.yaml
    asked = ["method=obd,magl1", "ratio=0.002,0.01,0.1", "seeds=0,1", "protocol.lr=0.1,0.3", "dataset.train_size=600"]
    OmegaConf.save({"hydra": {"overrides": {"task": asked}, "sweeper": {"params": None}}}, tmp_path / "multirun.yaml")
    cfg = job(composed("method=magl1", "ratio=0.01", "seeds=1", "protocol.lr=0.3", "dataset.train_size=600"))
    swept = hydra_job.swept()
    assert swept == [("method", "magl1"), ("ratio", "0.01"), ("seeds", "1"), ("protocol.lr", "0.3")]
    labels = run_labels(cfg, swept)
    assert labels.name == "adhoc/magl1/mnist/h100/r0.01 seeds=1 protocol.lr=0.3"
    assert labels.group == "adhoc/magl1/mnist/h100/r0.01 protocol.lr=0.3"  # the replica group: all but the seeds
    assert {"magl1", "mlp", "mnist", "fast", "ratio=0.01", "seeds=1", "protocol.lr=0.3"} <= set(labels.tags)
    assert not [t for t in labels.tags if "train_size" in t]


def test_a_preset_sweeps_its_params_and_a_population_names_all_its_ratios(job):
    cfg = job(composed("+experiment=smoke", "method=obd", "dataset=mnist_back_rand", "model.hidden=30"))
    assert hydra_job.swept() == [("method", "obd"), ("dataset", "mnist_back_rand")]  # the preset's params
    labels = run_labels(cfg, hydra_job.swept())
    assert labels.name == labels.group == "smoke/obd/mnist_back_rand/h30/r0.1+0.01"
    assert {"ratio=0.1", "ratio=0.01", "smoke"} <= set(labels.tags)


def test_the_union_sweepers_parts_vary_every_key_they_set(job, tmp_path):
    OmegaConf.save(composed("+experiment=ablation"), tmp_path / "multirun.yaml")
    cfg = job(composed("+experiment=table5", "dataset=mnist", "protocol=paper", "method.saliency.hessian=exact"))
    assert run_labels(cfg, hydra_job.swept()).name == ("table5/obd/mnist/h100/r1+0.5+0.1+0.05+0.03+0.02+0.015+0.012+"
                                                       "0.011+0.01+0.007+0.005+0.003+0.002 protocol=paper "
                                                       "method.saliency.hessian=exact")  # fmt: skip


def test_a_run_alone_and_a_reference_model_name_only_what_they_train():
    assert hydra_job.swept() == [] and hydra_job.parallel() is None  # outside a Hydra job
    labels = run_labels(composed("model=convnet"), [("model.kernel", "5")])
    assert labels.name == "adhoc/convnet/mnist/k5c8s1p2"  # the kernel is in its size; no ratio at 1.0
    assert not [t for t in labels.tags if t.startswith("ratio=")]
    pruned = run_labels(composed("model=hashednet", "method=obd", "ratio=0.1", "pruning.keep=0.5"), [])
    assert pruned.name == "adhoc/hashednet+obd/mnist/h100/r0.1"  # its buckets pruned: the method beside the model


def test_only_a_parallel_launchers_jobs_say_their_number(job):
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}
    job(composed(), launcher=joblib, num=5)
    assert hydra_job.parallel() == (5, 2)
    job(composed(), launcher={"_target_": hydra_job.BASIC_LAUNCHER}, num=5)
    assert hydra_job.parallel() is None  # one job after another: Hydra's own `#5 :` line says whose lines follow
