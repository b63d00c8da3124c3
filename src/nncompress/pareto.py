"""Pareto fronts of accuracy vs size from results files, e.g. to pick the ConvNets the paper compares against.

    python -m nncompress.pareto multirun/2026-11-24/10-00-00 [--select val_acc] [--out pareto.csv]

Settings (one per architecture, averaged over seeds) are selected on `--select` (validation accuracy by
default: the paper selected on test accuracy, which flatters the selected networks) and reported with their
test accuracy.
"""
import argparse

import pandas as pd

from .replicas import load_results

# What makes one setting: replicas differing only in their seed (and never across protocol variants or data).
SETTING = ["protocol", "data", "model.name", "model.kernel", "model.channels", "model.stride", "model.pool", "model.dropout",
                "hidden", "size", "dataset.name"]  # fmt: skip


def settings(table: pd.DataFrame, by=SETTING) -> pd.DataFrame:
    """One row per setting: mean and std over seeds of the accuracies, parameters and the number of seeds."""
    keys = [k for k in by if k in table.columns]
    metrics = [m for m in ("val_acc", "test_acc", "train_acc") if m in table.columns]
    grouped = table.groupby(keys, dropna=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" if stat == "std" else m for m, stat in out.columns]
    out["parameters"] = grouped["parameters"].mean()
    out["seeds"] = grouped.size()
    return out.reset_index()


def pareto_front(table: pd.DataFrame, accuracy: str = "val_acc", size: str = "parameters") -> pd.DataFrame:
    """Rows no other row dominates (>= accuracy with <= size, strictly better in one), smallest first."""
    acc, n = table[accuracy].to_numpy(), table[size].to_numpy()
    no_worse = (acc[None, :] >= acc[:, None]) & (n[None, :] <= n[:, None])
    better = (acc[None, :] > acc[:, None]) | (n[None, :] < n[:, None])
    dominated = (no_worse & better).any(axis=1)
    return table[~dominated].sort_values([size, accuracy]).reset_index(drop=True)


def convnet_variants(runs: pd.DataFrame, dataset: str, data_keys=None) -> dict[str, pd.DataFrame]:
    """The ConvNets on `dataset` per protocol variant (never pooled), keeping those trained and tested on the data
    `data_keys` name when given (the `data_key` column of `load_results`)."""
    conv = runs[(runs["role"] == "reference") & (runs["dataset"] == dataset)]
    if data_keys is not None:
        conv = conv[conv["data_key"].isin(data_keys)]
    return {label: group for label, group in conv.groupby("protocol")}


def convnet_front(conv: pd.DataFrame, size: str = "parameters") -> pd.DataFrame:
    """The ConvNet settings of one variant (see `convnet_variants`) no other beats in (accuracy, `size`: parameters
    or bytes on disk), means over seeds (validation accuracy selects when every setting has one)."""
    conv = conv.dropna(subset=[size])
    if conv.empty:
        return conv
    settings = conv.groupby("architecture")[["acc", "val_acc", size]].mean().reset_index()
    select = "val_acc" if settings["val_acc"].notna().all() else "acc"
    return pareto_front(settings, accuracy=select, size=size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="results stores, or multirun or run folders holding results.jsonl")
    parser.add_argument("--select", default="val_acc", help="column the front is selected on")
    parser.add_argument("--out", default=None, help="write the front as CSV here")
    args = parser.parse_args()
    table = settings(load_results(*args.dirs))
    if args.select not in table.columns:
        raise SystemExit(f"error: no '{args.select}' in the results (train with dataset.val_size=N, or --select test_acc)")
    front = pareto_front(table, args.select)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"{len(table)} settings, {len(front)} on the Pareto front (selected on {args.select}):")
        print(front.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        front.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
