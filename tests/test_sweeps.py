import subprocess
import sys

from nncompress.results import ResultStore

from conftest import ROOT


def smoke(tmp_path, sweep_dir, *extra):
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "-m", "+experiment=smoke", f"results_dir={tmp_path}/store",
           f"hydra.sweep.dir={sweep_dir}", *extra]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_smoke_preset_with_submitit_local_launcher_then_resume(tmp_path):
    smoke(tmp_path, tmp_path / "a", "hydra/launcher=submitit_local")
    store = ResultStore(tmp_path / "store")
    records = store.records()
    assert len(records) == 16  # 2 methods x 2 datasets x 2 seeds x 2 ratios
    assert {(r["config"]["method"]["name"], r["dataset"]) for r in records} == {
        (m, d) for m in ("magl1", "obd") for d in ("mnist", "mnist_back_rand")
    }
    assert {r["source"] for r in records if r["dataset"] == "mnist_back_rand"} == {"regenerated"}
    stamps = {p.name: p.stat().st_mtime_ns for p in store.root.glob("*.json")}
    smoke(tmp_path, tmp_path / "b")  # the basic launcher this time: everything is already done
    assert {p.name: p.stat().st_mtime_ns for p in store.root.glob("*.json")} == stamps
    assert len(list((tmp_path / "b").rglob("results.jsonl"))) == 0  # no job trained anything


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    smoke(tmp_path, tmp_path / "j", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "method=magl1",
          "dataset=mnist,mnist_back_rand")  # fmt: skip
    records = ResultStore(tmp_path / "store").records()
    assert len(records) == 8 and {r["dataset"] for r in records} == {"mnist", "mnist_back_rand"}
    assert len(list((tmp_path / "j").rglob("results.jsonl"))) == 2
