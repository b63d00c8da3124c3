"""`make paper-figures`: the paper's tables regenerated from the results store, beside the paper's numbers.

    python -m nncompress.report [--results multirun/results] [--out reports]

Reads only the local results store (never W&B). Writes, per paper table and protocol found,
`tableN_<protocol>.md` and `.csv`: rows = edges removed, columns = datasets, our mean ± std over seeds (sample
std, as the paper), the paper's value and the difference, in percent. Cells without runs show as "—".
"""
import argparse
from pathlib import Path

import pandas as pd

from .results import ResultStore

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "paper_tables.csv"
DATASETS = ["mnist", "mnist_back_image", "mnist_back_rand", "mnist_rot"]  # the paper's column order


def load_store(root) -> pd.DataFrame:
    """One row per stored replica: what names its cell, its seed, and its test accuracy in percent."""
    records = ResultStore(root).records()
    if not records:
        return pd.DataFrame(columns=["method", "model", "hidden", "protocol", "dataset", "source", "ratio", "seed", "acc"])
    return pd.DataFrame(
        {
            "method": [r["config"]["method"]["name"] for r in records],
            "model": [r["config"]["model"]["name"] for r in records],
            "hidden": [r["config"]["hidden"] for r in records],
            "protocol": [r["config"]["protocol"]["name"] for r in records],
            "dataset": [r["dataset"] for r in records],
            "source": [r["source"] for r in records],
            "ratio": [r["ratio"] for r in records],
            "seed": [r["seed"] for r in records],
            "acc": [100 * r["test_acc"] for r in records],
            "parameters": [r["parameters"] for r in records],
        }
    )


def cell_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count of the accuracy per (method, hidden, protocol, dataset, ratio)."""
    keys = ["method", "hidden", "protocol", "dataset", "ratio"]
    stats = runs[runs["model"] == "mlp"].groupby(keys)["acc"].agg(mean="mean", std="std", n="count")
    return stats.reset_index()


def table(reference: pd.DataFrame, stats: pd.DataFrame, number: int, protocol: str) -> pd.DataFrame:
    """Long form of one paper table for one protocol: the paper's cells joined with ours."""
    ref = reference[reference["table"] == number]
    ours = stats[stats["protocol"] == protocol].drop(columns="protocol")
    out = ref.merge(ours, how="left", on=["method", "hidden", "dataset", "ratio"])
    out["diff"] = out["mean"] - out["mean_pct"]
    return out.rename(columns={"mean_pct": "paper_mean", "std_pct": "paper_std", "mean": "ours_mean", "std": "ours_std"})


def fmt(mean, std, n=None) -> str:
    if pd.isna(mean):
        return "—"
    spread = "" if pd.isna(std) else f" ± {std:.2f}"
    return f"{mean:.2f}{spread}" + ("" if n is None or pd.isna(n) else f" (n={int(n)})")


def markdown(t: pd.DataFrame, number: int, protocol: str, sources: dict) -> str:
    method, hidden = t["method"].iloc[0], t["hidden"].iloc[0]
    datasets = [d for d in DATASETS if d in set(t["dataset"])]
    head = "| edges removed | " + " | ".join(f"{d} ours | paper | Δ" for d in datasets) + " |"
    lines = [
        f"## Table {number}: {method}, {hidden} hidden units, protocol `{protocol}`",
        "",
        "Test accuracy (%), mean ± sample std over seeds; paper: 5 runs. Δ = ours − paper. "
        + "Data: " + ", ".join(f"{d} ({sources.get(d, 'no runs')})" for d in datasets) + ".",
        "",
        head,
        "|" + " --- |" * (1 + 3 * len(datasets)),
    ]
    for removed, rows in t.groupby("edges_removed_pct", sort=True):
        cells = []
        for d in datasets:
            r = rows[rows["dataset"] == d].iloc[0]
            diff = "—" if pd.isna(r["diff"]) else f"{r['diff']:+.2f}"
            cells += [fmt(r["ours_mean"], r["ours_std"], r["n"]), fmt(r["paper_mean"], r["paper_std"]), diff]
        lines.append(f"| {removed:g} % | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(runs: pd.DataFrame, out: Path, reference: pd.DataFrame) -> list[Path]:
    """Every paper table for every protocol with runs (just the paper's numbers if there are none)."""
    stats = cell_stats(runs)
    sources = runs.groupby("dataset")["source"].agg(lambda s: "/".join(sorted(set(s)))).to_dict()
    written = []
    for protocol in sorted(set(stats["protocol"])) or ["none"]:
        for number in sorted(set(reference["table"])):
            t = table(reference, stats, number, protocol)
            stem = out / f"table{number}_{protocol}"
            t.to_csv(stem.with_suffix(".csv"), index=False)
            stem.with_suffix(".md").write_text(markdown(t, number, protocol, sources))
            written.append(stem.with_suffix(".md"))
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="multirun/results", help="the results store")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_store(args.results)
    for path in write_tables(runs, out, pd.read_csv(REFERENCE)):
        print(path)
    print(f"{len(runs)} stored replicas read from {args.results}")


if __name__ == "__main__":
    main()
