"""The table a multirun ends with: one row per job, from the `results.jsonl` its jobs wrote (a Hydra callback,
registered in conf/train.yaml as `hydra.callbacks.sweep_summary`)."""
from pathlib import Path

from hydra.experimental.callback import Callback


def sweep_table(sweep_dir) -> str:
    """Per job of the sweep: what it trained, its replicas, their mean (and std) test accuracy and parameters."""
    from . import load_results

    runs = load_results(sweep_dir)
    if runs.empty:
        return f"no results.jsonl under {sweep_dir} (jobs with everything already stored write none)"
    runs["job"] = runs["run_dir"].map(lambda d: Path(d).name)
    keys = ["job", "dataset", "model", "method", "hidden", "protocol"]
    jobs = runs.groupby(keys, sort=False).agg(replicas=("seed", "size"), ratios=("ratio", lambda r: len(set(r))),
                                              test_acc=("acc", "mean"), std=("acc", "std"),
                                              parameters=("parameters", "mean"))  # fmt: skip
    jobs = jobs.reset_index().sort_values("job", key=lambda j: j.map(lambda s: int(s) if s.isdigit() else -1))
    jobs["parameters"] = jobs["parameters"].round().astype(int)
    return jobs.to_string(index=False, float_format=lambda v: f"{v:.2f}")


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        print(f"\nsweep {sweep_dir}: test accuracy (%), mean and std over each job's replicas\n{sweep_table(sweep_dir)}")
