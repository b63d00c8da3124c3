import re

import pandas as pd

from nncompress.results import ResultStore

from conftest import ROOT, run_train


def multirun(tmp_path, sweep_dir, *args, env=None):
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags go before the overrides
    proc = run_train("-m", *flags, f"results_dir={tmp_path}/store", f"hydra.sweep.dir={sweep_dir}",
                     *(a for a in args if a not in flags), env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def smoke(tmp_path, sweep_dir, *extra):
    return multirun(tmp_path, sweep_dir, "+experiment=smoke", *extra)


def test_smoke_preset_with_submitit_local_launcher_then_resume(tmp_path):
    smoke(tmp_path, tmp_path / "a", "hydra/launcher=submitit_local")
    store = ResultStore(tmp_path / "store")
    records = store.records()
    assert len(records) == 16  # 2 methods x 2 datasets x 2 seeds x 2 ratios
    assert {(r["config"]["method"]["name"], r["dataset"]) for r in records} == {
        (m, d) for m in ("magl1", "obd") for d in ("mnist", "mnist_back_rand")
    }
    assert {r["source"] for r in records if r["dataset"] == "mnist_back_rand"} == {"regenerated"}
    metrics_files = list((tmp_path / "a").rglob("metrics.csv"))
    assert len(metrics_files) == 4  # one per job (logger=csv): the training loss once per epoch
    for metrics in metrics_files:
        losses = pd.read_csv(metrics)["train/loss"].dropna()
        assert len(losses) == records[0]["epochs"] and (losses > 0).all()
    stamps = {p.name: p.stat().st_mtime_ns for p in store.root.glob("*.json")}
    smoke(tmp_path, tmp_path / "b")  # the basic launcher this time: everything is already done
    assert {p.name: p.stat().st_mtime_ns for p in store.root.glob("*.json")} == stamps
    assert len(list((tmp_path / "b").rglob("results.jsonl"))) == 0  # no job trained anything


def test_joblib_launcher_runs_jobs_in_parallel_processes_whose_lines_say_their_job(tmp_path):
    proc = smoke(tmp_path, tmp_path / "j", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "method=magl1",
                 "dataset=mnist,mnist_back_rand")  # fmt: skip
    records = ResultStore(tmp_path / "store").records()
    assert len(records) == 8 and {r["dataset"] for r in records} == {"mnist", "mnist_back_rand"}
    assert len(list((tmp_path / "j").rglob("results.jsonl"))) == 2
    epochs = [line for line in proc.stdout.splitlines() if re.search(r"epoch \d+/", line)]  # each whole, none cut
    assert epochs and all(re.fullmatch(r"#[01] epoch \d+/\d+  .*  ETA .*", line) for line in epochs), epochs
    for job in (0, 1):
        mine = [line for line in epochs if line.startswith(f"#{job} ")]
        assert len(mine) == records[0]["epochs"]
        logged = (tmp_path / "j" / str(job) / "train.log").read_text().splitlines()
        assert [line for line in logged if re.search(r"epoch \d+/", line)] == mine


def preset_jobs(name: str) -> int:
    """Jobs of `-m +experiment=<name>` alone, counted from the sweeper params the preset composes (its own, or those
    of a part of it in conf/preset/)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"+experiment={name}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    count = 1
    for value in params.values():
        if str(value).startswith("range("):
            lo, hi = map(int, str(value)[6:-1].split(","))
            count *= hi - lo
        else:
            count *= len(str(value).split(","))
    return count


def dry_run(tmp_path, *extra):
    proc = multirun(tmp_path, tmp_path / "dry", "+experiment=paper", "hydra.sweeper.dry_run=true", *extra)
    return [line.split() for line in proc.stdout.splitlines() if "+experiment=" in line]


def test_paper_preset_is_every_preset_swept_as_alone(tmp_path):
    jobs = dry_run(tmp_path)
    presets = [f"table{i}" for i in range(1, 7)] + [f"fig{i}" for i in range(1, 7)]
    expected = {p: preset_jobs(p) for p in presets}
    expected["convnet_grid"] = preset_jobs("convnet_grid") * 4  # on each of the 4 datasets
    per_part = {p: sum(f"+experiment={p}" in job for job in jobs) for p in expected}
    assert per_part == expected and len(jobs) == sum(expected.values())
    assert len({" ".join(sorted(job)) for job in jobs}) == len(jobs)  # no job twice
    assert {"method=magl2", "+experiment=fig6"} <= set(jobs[-expected["convnet_grid"] - 1])  # parts run in order
    assert not list((tmp_path / "store").glob("*.json"))  # a dry run trains nothing


def test_paper_preset_command_line_overrides_win_in_every_part(tmp_path):
    jobs = dry_run(tmp_path, "dataset=mnist")
    assert jobs and all("dataset=mnist" in job for job in jobs)
    tables = [job for job in jobs if any(a.startswith("+experiment=table") for a in job)]
    assert len(tables) == 6


def test_union_sweeper_runs_every_part(tmp_path):
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "two_parts.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /hydra/sweeper: union\n"
        "hydra:\n  sweeper:\n    parts:\n"
        "      - [+experiment=smoke, method=magl1, dataset=mnist]\n"
        "      - [+experiment=smoke, method=none, 'ratio=[1.0]', 'seeds=[3]', 'dataset=mnist,mnist_back_rand']\n"
    )
    multirun(tmp_path, tmp_path / "sweep", f"--config-dir={tmp_path / 'conf'}", "+experiment=two_parts", "model.hidden=20")
    records = ResultStore(tmp_path / "store").records()
    got = sorted((r["config"]["method"]["name"], r["dataset"], r["seed"], r["ratio"]) for r in records)
    assert got == sorted([("magl1", "mnist", s, r) for s in (0, 1) for r in (0.1, 0.01)]
                         + [("none", d, 3, 1.0) for d in ("mnist", "mnist_back_rand")])  # fmt: skip
    assert {r["config"]["model"]["hidden"] for r in records} == {20} and {r["config"]["experiment"] for r in records} == {"smoke"}


def test_ablation_preset_changes_one_reading_at_a_time(tmp_path):
    proc = multirun(tmp_path, tmp_path / "dry", "+experiment=ablation", "hydra.sweeper.dry_run=true")
    jobs = [set(line.split()) for line in proc.stdout.splitlines() if "+experiment=" in line]
    assert len(jobs) == 6 * 6 + 3 * 2 and all({"dataset=mnist", "protocol=paper"} <= job for job in jobs)
    readings = [{o for o in job - {"dataset=mnist", "protocol=paper"} if not o.startswith(("results_dir=", "hydra."))}
                for job in jobs]  # fmt: skip
    assert all(len(r) <= 2 for r in readings)  # the table, and at most one changed reading
    assert sum("protocol.lr=1.0" in r for r in readings) == 6  # the authors' command line's eta_0, every table
    assert sum("pruning.timing.trigger_lag=1" in r for r in readings) == 6  # the authors' loop's trigger
    assert sum("pruning.timing.final=test_peak" in r for r in readings) == 6  # "until the accuracy" (test) peaks
    assert sum(r == {"+experiment=table5", "method.saliency.hessian=exact"} for r in readings) == 1
    assert sum(r == {"+experiment=table6", "method.saliency.hessian_at=first_step"} for r in readings) == 1  # an OBD key


def test_wandb_gives_each_job_of_a_multirun_its_own_named_run(tmp_path):
    import os

    from wandb_offline import offline_run

    os.environ["WANDB_MODE"] = "offline"  # the subprocess inherits it
    try:
        proc = smoke(tmp_path, tmp_path / "w", "logger=wandb", "histogram_epochs=[2]", "export=true")
    finally:
        del os.environ["WANDB_MODE"]
    runs = [offline_run(d) for d in sorted((tmp_path / "w").glob("*/wandb/offline-run-*"))]
    assert sorted(r["name"] for r in runs) == sorted(f"smoke/{m}/{d}/h30/r0.1+0.01" for m in ("magl1", "obd")
                                                    for d in ("mnist", "mnist_back_rand"))  # fmt: skip
    for r in runs:
        method, dataset = r["name"].split("/")[1:3]
        assert r["group"] == r["name"] and r["job_type"] == "smoke"  # the preset sweeps no seeds
        assert {"smoke", method, dataset, "fast", "ratio=0.1", "ratio=0.01"} <= r["tags"]
        replicas = [f"{dataset}_seed{s}_ratio{q}" for s in (0, 1) for q in (0.1, 0.01)]
        for name in replicas:  # every replica's own curves, its histogram, and the table of replicas
            assert {f"train/loss/{name}", f"train/acc/{name}", f"prune/sparsity/{name}", f"weights/{name}/bins"} <= r["keys"]
        assert any(k.startswith("replicas") for k in r["keys"])
        assert r["artifacts"][f"replicas-smoke-{method}-{dataset}-h30-r0.1_0.01"] == ("model", 4)  # the exported files
    assert "wandb:" not in proc.stdout + proc.stderr  # W&B's own console lines are silenced
    assert proc.stdout.count("W&B run 'smoke/") == 4
