"""The table a multirun ends with: one row per replica group of the sweep, from the `results.jsonl` its jobs wrote
(a Hydra callback, registered in conf/train.yaml as `hydra.callbacks.sweep_summary`)."""
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from tabulate import tabulate

# A replica group: replicas trained alike but for their seed (load_results keeps protocol variants apart).
GROUP = ["method", "model", "size", "dataset", "protocol", "ratio"]
HEADERS = ["jobs", *GROUP, "n", "test acc (%)", "std", "parameters"]


def job_order(jobs: pd.Series) -> pd.Series:
    """Run folders (`hydra.sweep.subdir`, the job's number) in the order their jobs ran; others first."""
    return jobs.map(lambda name: int(name) if name.isdigit() else -1)


def sweep_table(sweep_dir) -> str:
    """Per replica group: the jobs that trained it, its n replicas, their mean and std test accuracy in percent
    (std `—` for a single replica) and mean parameters; in the order the jobs ran."""
    from . import load_results

    if not any(Path(sweep_dir).rglob("results.jsonl")):  # (load_results refuses a folder with neither runs nor a store)
        return f"no results.jsonl under {sweep_dir} (jobs with everything already stored write none)"
    runs = load_results(sweep_dir)
    runs["job"] = runs["run_dir"].map(lambda d: Path(d).name)
    runs = runs.sort_values("job", key=job_order, kind="stable")
    groups = runs.groupby(GROUP, sort=False, dropna=False).agg(
        jobs=("job", lambda j: ",".join(dict.fromkeys(j))), n=("acc", "size"), acc=("acc", "mean"),
        std=("acc", "std"), parameters=("parameters", "mean")).reset_index()  # fmt: skip
    rows = [[g["jobs"], *(g[c] for c in GROUP[:-1]), f"{g['ratio']:g}", g["n"], f"{g['acc']:.2f}",
             "—" if pd.isna(g["std"]) else f"{g['std']:.2f}", f"{round(g['parameters']):,}"]
            for _, g in groups.iterrows()]  # fmt: skip
    return tabulate(rows, HEADERS, disable_numparse=True, colalign=["right"] + ["left"] * 5 + ["right"] * 5)


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        print(f"\nsweep {sweep_dir}: test accuracy (%) per replica group (replicas alike but for their seed): mean "
              f"and std over its n replicas\n{sweep_table(sweep_dir)}")
