"""The controls a comparison of pruning methods needs (Blalock et al. 2020): random pruning, a method like any other
but never standing for "pruning", and the dense MLP of equal size, trained as the pruning method it stands beside
trains (its regularizer, ratio 1), so that the two differ by the pruning alone."""
import numpy as np
import pandas as pd

# "Equal size" for the dense control: parameter counts within this factor (a dense MLP's widths step by 795 parameters,
# and none is smaller than width 1's 805: a pruned net of fewer than half that has no dense net of its size).
EQUAL_SIZE = 2.0


def controls(runs: pd.DataFrame) -> set[str]:
    """The methods whose config marks them as controls (`control: true`, random pruning): compared with each paper
    method like any new method, but never standing for "pruning" in the claims against HashedNet and dense MLPs."""
    if "method.control" not in runs:
        return set()
    return set(runs.loc[runs["method.control"].eq(True), "method"])


def recipe(rows: pd.DataFrame) -> pd.Series:
    """Each run's regularizer ("" for none): what a dense control must share with the pruned runs it stands beside."""
    column = "method.regularizer._target_"
    return rows[column].fillna("") if column in rows else pd.Series("", index=rows.index)


def dense_controls(runs: pd.DataFrame) -> pd.DataFrame:
    """The dense control's runs: the unpruned MLPs (ratio 1) of every method, method=none's included (a table's
    first row, and `+experiment=dense_control`'s widths)."""
    return runs[(runs["role"] == "pruned") & (runs["ratio"] == 1.0)]


def dense_control(dense: pd.DataFrame, pruned: pd.DataFrame, method: str, size: str) -> pd.DataFrame:
    """The unpruned runs (`dense`: ratio 1, one protocol and data) nearest `pruned` in size among those trained with
    its regularizer: the method's own where it has some at that size, else one other method's (the first by name)."""
    same = dense[recipe(dense) == recipe(pruned).iloc[0]]
    control = nearest_in_size(same, pruned[size].mean(), size)
    if control.empty:
        return control
    methods = set(control["method"])
    return control[control["method"] == (method if method in methods else min(methods))]


def settings(rows: pd.DataFrame, size: str) -> pd.DataFrame:
    """One row per (net, ratio) setting of `rows` (`replicas.net`: its hidden sizes): its mean `size`."""
    return rows.groupby(["net", "ratio"])[size].mean().reset_index()


def nearest_in_size(rows: pd.DataFrame, target: float, size: str, within: float = EQUAL_SIZE) -> pd.DataFrame:
    """The replicas of the setting of `rows` whose mean `size` is nearest `target` (by ratio: 2x off is as far as
    half), if it is within a factor `within` of it; none otherwise."""
    options = settings(rows, size)
    if options.empty or target <= 0:
        return rows.iloc[:0]
    distance = np.abs(np.log(options[size] / target))
    if distance.min() > np.log(within):
        return rows.iloc[:0]
    return rows[rows["net"] == options.loc[distance.idxmin(), "net"]]
