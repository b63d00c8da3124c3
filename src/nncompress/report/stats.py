"""Statistics of the stored runs: per cell, mean, sample std, seeds and replicas that learned nothing; per protocol
variant, its data, settings and replicas read; and the test of a difference between two cells.

Two methods' replicas in one cell (protocol, dataset, hidden sizes, ratio) with one seed start from the same weights
and read the same data order (their random streams hash (seed, ratio), or (seed,) with common random numbers, never
the method), so method comparisons are paired by seed: a paired t-test over seeds. Not Wilcoxon's signed-rank test:
with the paper's 5 seeds its smallest two-sided p-value is 2 / 2^5 = 0.0625, so it could never reject at 5 %. Model
comparisons (ConvNet vs MLP) share nothing: Welch's t-test.
"""
import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


SIZES = ("parameters", "flops", "compression", "speedup")  # what a cell's replicas cost, besides their accuracy


def cell_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count of the accuracy per (method, net, protocol, dataset, ratio), how many of the
    cell's replicas learned nothing (`at_chance`: kept in the mean, since leaving them out would flatter a method),
    and the means of their `SIZES` (NaN where none of them has one). `net` names the hidden sizes (`h300-100`);
    `hidden` is beside it, NA for a deep net."""
    keys = ["method", "net", "hidden", "protocol", "dataset", "ratio"]
    grouped = runs[runs["role"] == "pruned"].groupby(keys, dropna=False)
    stats = grouped.agg(mean=("acc", "mean"), std=("acc", "std"), n=("acc", "count"), at_chance=("at_chance", "sum"),
                        **{size: (size, "mean") for size in SIZES})  # fmt: skip
    return stats.reset_index()


def variant_data(runs: pd.DataFrame, protocol: str) -> dict:
    """Per dataset, the data one protocol variant's replicas were trained and tested on, and the variant's settings."""
    sel = runs[runs["protocol"] == protocol]
    return {"data": sel.groupby("dataset")["data"].agg(lambda d: "; ".join(sorted(set(d)))).to_dict(),
            "settings": "; ".join(sorted(set(sel["settings"]) - {""}))}  # fmt: skip


def compressed_protocols(runs: pd.DataFrame) -> list[str]:
    """The protocol variants of the compressed models (the reference architectures train under their own)."""
    return sorted(set(runs.loc[runs["role"].isin(["pruned", "sized"]), "protocol"]))


def variants(runs: pd.DataFrame) -> pd.DataFrame:
    """What was read: per model, protocol variant and dataset, the variant's settings, its data and replica count."""
    keys = ["model", "protocol", "settings", "dataset", "data"]
    counts = runs.groupby(keys).agg(replicas=("seed", "size"), seeds=("seed", "nunique"))
    return counts.reset_index()


def by_seed(cell: pd.DataFrame) -> pd.Series:
    return cell.groupby("seed")["acc"].mean()


def varies(x: np.ndarray) -> bool:
    """Whether values (accuracy points) differ by more than float rounding: one test example is ~0.01 point."""
    return not np.allclose(x, x.mean(), rtol=0, atol=1e-9)


def difference(a: pd.Series, b: pd.Series, paired: bool) -> dict:
    """a - b for accuracies indexed by seed: mean difference, its 95 % confidence interval, the two-sided p-value
    (NaN when a side has fewer than two seeds) and the test used."""
    if paired:
        seeds = a.index.intersection(b.index)
        a, b = a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()
        n, test = f"{len(seeds)} pairs", "paired t"
        tested = len(seeds) >= 2
        spread = tested and varies(a - b)
    else:
        a, b = a.to_numpy(), b.to_numpy()
        n, test = f"{len(a)}/{len(b)}", "Welch t"
        tested = len(a) >= 2 and len(b) >= 2
        spread = tested and (varies(a) or varies(b))
    row = {"A - B": a.mean() - b.mean() if len(a) and len(b) else np.nan, "n": n, "test": test}
    if not tested:
        return {**row, "ci low": np.nan, "ci high": np.nan, "p": np.nan}
    if not spread:  # every seed gives the same difference: certain, with nothing to test it against
        return {**row, "ci low": row["A - B"], "ci high": row["A - B"], "p": float(row["A - B"] == 0)}
    result = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(1 - ALPHA)
    return {**row, "ci low": ci.low, "ci high": ci.high, "p": float(result.pvalue)}
