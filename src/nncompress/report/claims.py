"""The paper's conclusions re-tested on stored runs: one verdict per claim and protocol, with the cells behind it.

Methods in one cell are compared paired by seed, ConvNets with MLPs by Welch's t-test (see `stats`). Within one
claim and protocol, p-values are adjusted by Holm-Bonferroni over the tested cells. A cell with fewer than two seeds
on a side is "not tested". ConvNets stand beside MLPs only when trained and tested on the same data, one ConvNet
protocol variant at a time.

A pruning method the paper did not test (`paper.other_methods`) is compared, paired by seed, with each of the
paper's in every cell they share, under a claim of its own per paper method, `<method> >= <paper method>`.

The paper's headline claim, pruning beats HashedNet, sets each pruning method against the smallest HashedNet setting
at least as large, per HashedNet protocol variant: paired by seed when both trained under one protocol at one ratio
(the same data order per seed), by Welch's test otherwise. The dense control sets each pruned cell (ratio < 1)
against the unpruned MLP (ratio 1) of the nearest size (within a factor of 2) trained as the pruning method trains,
under the same protocol and data: with the same regularizer (MagL1's dense runs for MagL1; MagL2's, OBD's... for
the L2 methods; method=none's for LTH), so that a control differs by as little as the runs allow (`controls`; Welch:
nothing is shared).
"""
import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from ..pareto import convnet_front, convnet_variants
from .controls import controls, dense_control, dense_controls, settings
from .paper import PRUNING, other_methods
from .stats import ALPHA, by_seed, difference

HIGH_COMPRESSION = 0.01  # ratios at or below this count as "high compression"
MAGNITUDE_VS_OBD = "magnitude >= OBD at high compression"
L1_VS_L2 = "L1 >= L2 at high compression"
PRUNING_VS_CONVNET = "pruning >= a ConvNet of equal or smaller size"
CONVNET_VS_HASHEDNET = "a ConvNet of equal or smaller size >= HashedNet"
PRUNING_VS_HASHEDNET = "pruning >= HashedNet of equal or larger size"  # the paper's headline (abstract, Section 1)
PRUNING_VS_DENSE = "pruning >= a dense MLP of equal size"  # the control a reviewer asks for (Blalock et al. 2020)
CLAIMS = (PRUNING_VS_HASHEDNET, MAGNITUDE_VS_OBD, L1_VS_L2, PRUNING_VS_CONVNET, CONVNET_VS_HASHEDNET, PRUNING_VS_DENSE)
VERDICTS = ("holds", "not contradicted", "fails", "not tested")


def smallest_at_least(rows: pd.DataFrame, limit: float, size: str) -> pd.DataFrame:
    """The replicas of the smallest setting of `rows` with a mean `size` of at least `limit`; none if all are smaller."""
    options = settings(rows, size)
    options = options[options[size] >= limit].sort_values([size, "net"])
    if options.empty:
        return rows.iloc[:0]
    net, ratio = options.iloc[0][["net", "ratio"]]
    return rows[(rows["net"] == net) & (rows["ratio"] == ratio)]


def best_convnet_within(conv: pd.DataFrame, limit: float, size: str = "parameters") -> pd.DataFrame:
    """The replicas of the most accurate setting of one ConvNet variant (on the selection metric) with at most
    `limit` of `size` (parameters, or bytes on disk); none if no setting is that small."""
    front = convnet_front(conv, size)
    front = front[front[size] <= limit]
    if front.empty:
        return conv.iloc[:0]
    return conv[conv["architecture"] == front.iloc[-1]["architecture"]]


def comparisons(runs: pd.DataFrame, size: str = "parameters") -> pd.DataFrame:
    """Every cell where both sides of a claim have runs: the difference A - B (A the side the paper favours), its
    test, Holm-adjusted p-value and the cell's verdict, and how many of the replicas behind it learned nothing
    (`at chance`: kept, as they are the result a method gave). `size` is what "equal size" counts: parameters, or
    bytes."""
    rows = []

    def add(claim, comparison, a_rows, b_rows, paired, where):
        a, b = by_seed(a_rows), by_seed(b_rows)
        if len(a) and len(b):
            rows.append({"claim": claim, **where, "comparison": comparison, "A": a.mean(), "B": b.mean(),
                         **difference(a, b, paired),
                         "at chance": int(a_rows["at_chance"].sum() + b_rows["at_chance"].sum())})  # fmt: skip

    mlp, others = runs[runs["role"] == "pruned"], other_methods(runs)
    hashed, dense, baselines = runs[runs["role"] == "sized"], dense_controls(mlp), controls(runs)
    for (protocol, net, dataset, ratio), cell in mlp.groupby(["protocol", "net", "dataset", "ratio"]):
        if ratio >= 1:
            continue  # no weight pruned: a dense MLP (a table's first row, a dense control's width), never pruning
        acc = {m: cell[cell["method"] == m] for m in PRUNING + tuple(others)}
        where = {"protocol": protocol, "dataset": dataset, "net": net, "ratio": ratio}
        data = set(cell["data_key"])
        for m, pruned in acc.items():
            if not len(pruned) or m in baselines:  # random pruning is the baseline, not "pruning" the claims judge
                continue
            for variant, h in hashed[(hashed["dataset"] == dataset) & hashed["data_key"].isin(data)].groupby("protocol"):
                best = smallest_at_least(h, pruned[size].mean(), size)
                if len(best):
                    h_net, h_ratio = best.iloc[0][["net", "ratio"]]
                    paired = variant == protocol and h_ratio == ratio
                    add(PRUNING_VS_HASHEDNET, f"{m} vs hashednet {h_net} r{h_ratio:g} ({variant})", pruned, best,
                        paired, where)  # fmt: skip
            same = dense[(dense["protocol"] == protocol) & (dense["dataset"] == dataset) & dense["data_key"].isin(data)]
            control = dense_control(same, pruned, m, size)
            if len(control):
                net_b, method_b = control.iloc[0][["net", "method"]]
                add(PRUNING_VS_DENSE, f"{m} vs dense {net_b} ({method_b})", pruned, control, False, where)
        if ratio <= HIGH_COMPRESSION:
            for mag in ("magl1", "magl2"):
                add(MAGNITUDE_VS_OBD, f"{mag} vs obd", acc[mag], acc["obd"], True, where)
            add(L1_VS_L2, "magl1 vs magl2", acc["magl1"], acc["magl2"], True, where)
        for new in others:
            for paper in PRUNING:
                add(f"{new} >= {paper}", f"{new} vs {paper}", acc[new], acc[paper], True, where)
        for label, conv in convnet_variants(runs, dataset, set(cell["data_key"])).items():
            for m in PRUNING:
                if len(acc[m]):
                    best = best_convnet_within(conv, cell[cell["method"] == m][size].mean(), size)
                    add(PRUNING_VS_CONVNET, f"{m} vs ConvNet {label}", acc[m], best, False, where)
    hashed = runs[runs["role"] == "sized"]
    for (protocol, net, dataset, ratio), cell in hashed.groupby(["protocol", "net", "dataset", "ratio"]):
        where = {"protocol": protocol, "dataset": dataset, "net": net, "ratio": ratio}
        for label, conv in convnet_variants(runs, dataset, set(cell["data_key"])).items():
            best = best_convnet_within(conv, cell[size].mean(), size)
            add(CONVNET_VS_HASHEDNET, f"ConvNet {label} vs hashednet", best, cell, False, where)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p (Holm)"] = np.nan
    for _, group in table.groupby(["claim", "protocol"]):
        tested = group["p"].notna()
        if tested.any():
            table.loc[group.index[tested], "p (Holm)"] = multipletests(group.loc[tested, "p"], method="holm")[1]
    table["verdict"] = [cell_verdict(d, p) for d, p in zip(table["A - B"], table["p (Holm)"])]
    return table


def cell_verdict(diff: float, p_holm: float) -> str:
    if np.isnan(p_holm):
        return "not tested (n < 2)"
    if p_holm >= ALPHA:
        return "no significant difference"
    return "supports" if diff > 0 else "CONTRADICTS"


def verdicts(table: pd.DataFrame, protocols) -> pd.DataFrame:
    """One verdict per claim and protocol (VERDICTS): `fails` if a cell contradicts it significantly (after Holm),
    else `holds` if at least one supports it significantly, `not contradicted` if cells were tested and none differs
    significantly, `not tested` if none could be; with the cell counts behind it (and how many cells hold replicas
    that learned nothing). The paper's claims come first, then those on methods it did not test that `table` holds."""
    rows = []
    for claim in dict.fromkeys(CLAIMS + tuple(table["claim"] if len(table) else ())):
        for protocol in protocols:
            cells = table[(table["claim"] == claim) & (table["protocol"] == protocol)] if len(table) else table
            count = {v: int((cells["verdict"] == v).sum()) if len(cells) else 0
                     for v in ("supports", "CONTRADICTS", "no significant difference", "not tested (n < 2)")}  # fmt: skip
            tested = count["supports"] + count["CONTRADICTS"] + count["no significant difference"]
            verdict = ("fails" if count["CONTRADICTS"] else "holds" if count["supports"]
                       else "not contradicted" if tested else "not tested")  # fmt: skip
            stuck = int((cells["at chance"] > 0).sum()) if len(cells) else 0
            rows.append([claim, protocol, verdict, tested, count["supports"], count["CONTRADICTS"],
                         count["not tested (n < 2)"], stuck])  # fmt: skip
    columns = ["claim", "protocol", "verdict", "cells tested", "supporting", "contradicting", "not tested (n < 2)",
               "cells with replicas at chance"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)  # the columns also when there is no run yet
