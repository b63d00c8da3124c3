"""`make paper-figures`: the paper's tables and figures regenerated from the results store.

    python -m nncompress.report [--results multirun/results] [--out reports]

Reads only the local results store (never W&B). Writes, per paper table and protocol found,
`tableN_<protocol>.md` and `.csv` (`<protocol>-<hash>` where runs under one protocol name were trained with
different settings or on different data, see `nncompress.replicas`): rows = edges removed, columns = datasets, our
mean ± std over n seeds (sample std, as the paper; "k at chance" where replicas learned nothing), the paper's
value and the difference, in percent; cells without runs show as "—". A pruning method the paper did not test gets a table of the same shape per hidden size, ours
only (`table_<method>_<hidden>_<protocol>`), its curves in Figures 2-5 after the paper's and claims of its own (see
`nncompress.claims`). Figures 1-5 (`figN_<protocol>.png` / `.pdf`): test accuracy vs parameters, log x, one curve per
hidden size, with the Pareto front of each ConvNet variant on the same data (selected on validation accuracy when
the ConvNets have a validation split) as a line; per dataset with artefacts (`export=true`), accuracy vs bytes on
disk (`bytes_<dataset>_<protocol>.png`). Then `fidelity.md`, `summary.md` and all of it as one page, `index.html`.

Safe to rerun: every store is checked before anything is written (a missing, mistyped or empty one is an error), and
the new report replaces the last one in `--out` only once all of it is written (files of your own there stay).
"""
import argparse
import os
import shutil
import tempfile
from contextlib import contextmanager
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind_from_stats
from statsmodels.stats.multitest import multipletests

from . import claims
from .errors import UserError, exit_on_user_error
from .pareto import convnet_front, convnet_variants
from .replicas import load_results
from .resources import PAPER_TABLES

REFERENCE = PAPER_TABLES
DATASETS = ["mnist", "mnist_back_image", "mnist_back_rand", "mnist_rot"]  # the paper's column order


def variant_data(runs: pd.DataFrame, protocol: str) -> dict:
    """Per dataset, the data one protocol variant's replicas were trained and tested on, and the variant's settings."""
    sel = runs[runs["protocol"] == protocol]
    return {"data": sel.groupby("dataset")["data"].agg(lambda d: "; ".join(sorted(set(d)))).to_dict(),
            "settings": "; ".join(sorted(set(sel["settings"]) - {""}))}  # fmt: skip


def cell_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count of the accuracy per (method, hidden, protocol, dataset, ratio), and how many of the
    cell's replicas learned nothing (`at_chance`: kept in the mean, since leaving them out would flatter a method)."""
    keys = ["method", "hidden", "protocol", "dataset", "ratio"]
    grouped = runs[runs["model"] == "mlp"].groupby(keys)
    stats = grouped.agg(mean=("acc", "mean"), std=("acc", "std"), n=("acc", "count"), at_chance=("at_chance", "sum"))
    return stats.reset_index()


def table(reference: pd.DataFrame, stats: pd.DataFrame, number: int, protocol: str) -> pd.DataFrame:
    """Long form of one paper table for one protocol: the paper's cells joined with ours."""
    ref = reference[reference["table"] == number]
    ours = stats[stats["protocol"] == protocol].drop(columns="protocol")
    out = ref.merge(ours, how="left", on=["method", "hidden", "dataset", "ratio"])
    out["diff"] = out["mean"] - out["mean_pct"]
    return out.rename(columns={"mean_pct": "paper_mean", "std_pct": "paper_std", "mean": "ours_mean", "std": "ours_std"})


def method_tables(runs: pd.DataFrame, protocol: str) -> dict[tuple, pd.DataFrame]:
    """Per pruning method the paper did not test and hidden size with runs under `protocol`: the long form of a table
    shaped like the paper's (see `table`), our cells only, "—" where a dataset has no run at a ratio."""
    stats = cell_stats(runs)
    stats = stats[(stats["protocol"] == protocol) & stats["method"].isin(claims.other_methods(runs))]
    tables = {}
    for (method, hidden), ours in stats.groupby(["method", "hidden"]):
        grid = pd.MultiIndex.from_product([sorted(set(ours["ratio"])), sorted(set(ours["dataset"]))],
                                          names=["ratio", "dataset"])  # fmt: skip
        t = ours.drop(columns=["method", "hidden", "protocol"]).set_index(grid.names).reindex(grid).reset_index()
        t = t.rename(columns={"mean": "ours_mean", "std": "ours_std"}).assign(method=method, hidden=hidden)
        tables[method, hidden] = t.assign(edges_removed_pct=(100 * (1 - t["ratio"])).round(6))
    return tables


def title(t: pd.DataFrame, number: int | None = None) -> str:
    """A table's title: the paper's number (None: a method the paper did not test), method and hidden units."""
    name = f"{t['method'].iloc[0]}, {t['hidden'].iloc[0]:g} hidden units"
    return f"Table {number}: {name}" if number is not None else f"{name} (not in the paper)"


def fmt(mean, std, n=None, at_chance=0) -> str:
    """`96.00 ± 1.00 (n=3)`, with `, 1 at chance` when replicas of the cell learned nothing."""
    if pd.isna(mean):
        return "—"
    spread = "" if pd.isna(std) else f" ± {std:.2f}"
    stuck = f", {int(at_chance)} at chance" if pd.notna(at_chance) and at_chance else ""
    return f"{mean:.2f}{spread}" + ("" if n is None or pd.isna(n) else f" (n={int(n)}{stuck})")


AT_CHANCE_NOTE = ("k at chance: replicas that learned nothing (training accuracy within 1 point of always answering "
                  "the commonest class), kept in the mean.")  # fmt: skip


def markdown(t: pd.DataFrame, number: int | None, protocol: str, variant: dict) -> str:
    """Paper table `number` (long form, see `table`) as Markdown, or with number None a method's table without the
    paper's columns (see `method_tables`)."""
    datasets, paper = [d for d in DATASETS if d in set(t["dataset"])], number is not None
    parts = ("ours", "paper", "Δ") if paper else ("ours",)
    lines = [
        f"## {title(t, number)}, protocol `{protocol}`",
        "",
        "Test accuracy (%), mean ± sample std over seeds (n = seeds)"
        + ("; paper: 5 runs. Δ = ours − paper. " if paper else ". ")
        + (f"Settings: {variant['settings']}. " if variant["settings"] else "")
        + (AT_CHANCE_NOTE if t["at_chance"].fillna(0).any() else ""),
        "",
        "Data: " + "; ".join(f"{d}: {variant['data'].get(d, 'no runs')}" for d in datasets) + ".",
        "",
        "| edges removed | " + " | ".join(f"{d} " + " | ".join(parts) for d in datasets) + " |",
        "|" + " --- |" * (1 + len(parts) * len(datasets)),
    ]
    for removed, rows in t.groupby("edges_removed_pct", sort=True):
        cells = []
        for d in datasets:
            r = rows[rows["dataset"] == d].iloc[0]
            cells.append(fmt(r["ours_mean"], r["ours_std"], r["n"], r["at_chance"]))
            if paper:
                cells += [fmt(r["paper_mean"], r["paper_std"]), "—" if pd.isna(r["diff"]) else f"{r['diff']:+.2f}"]
        lines.append(f"| {removed:g} % | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(runs: pd.DataFrame, out: Path, reference: pd.DataFrame) -> list[Path]:
    """Every paper table for every protocol with runs (just the paper's numbers if there are none), then the tables
    of the methods the paper did not test."""
    stats = cell_stats(runs)
    written = []
    for protocol in sorted(set(stats["protocol"])) or ["none"]:
        variant = variant_data(runs, protocol)
        tables = [(n, f"table{n}", table(reference, stats, n, protocol)) for n in sorted(set(reference["table"]))]
        tables += [(None, f"table_{m}_{h:g}", t) for (m, h), t in method_tables(runs, protocol).items()]
        for number, name, t in tables:
            stem = out / f"{name}_{protocol}"
            t.to_csv(stem.with_suffix(".csv"), index=False)
            stem.with_suffix(".md").write_text(markdown(t, number, protocol, variant))
            written.append(stem.with_suffix(".md"))
    return written


def tolerance_cells(runs: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Every paper-table cell with runs, per protocol variant, with its data (MNIST, the variants) and whether it lies
    within ±1 point of the paper, or two of the paper's standard deviations where that is larger."""
    stats, frames = cell_stats(runs), []
    for protocol in sorted(set(stats["protocol"])):
        settings = runs.loc[runs["protocol"] == protocol, "settings"].iloc[0]
        for number in sorted(set(reference["table"])):
            t = table(reference, stats, number, protocol).dropna(subset=["ours_mean"])
            close = t["diff"].abs() <= np.maximum(1.0, 2 * t["paper_std"])
            data = np.where(t["dataset"] == "mnist", "mnist", "variants")
            frames.append(t.assign(protocol=protocol, settings=settings, close=close, data=data))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def within_tolerance(runs: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per protocol variant, paper table and data (MNIST, the variants): how many cells with runs lie within the
    paper's tolerance (`tolerance_cells`), the mean |ours − paper| (which tells apart readings that all fall within
    the tolerance), how many of the 0 %-removed cells lie within ±0.5 (issue 11's goal for a faithful protocol), and
    how many cells hold replicas that learned nothing."""
    cells, rows = tolerance_cells(runs, reference), []
    if cells.empty:
        return pd.DataFrame()
    for (protocol, settings, number, data), t in cells.groupby(["protocol", "settings", "table", "data"]):
        dense = t["edges_removed_pct"] == 0
        rows.append({"protocol": protocol, "settings": settings, "table": number, "data": data, "cells": len(t),
                     "within ±1 (or 2 sd)": int(t["close"].sum()), "mean abs Δ": float(t["diff"].abs().mean()),
                     "0 % cells": int(dense.sum()), "0 % within ±0.5": int(((t["diff"].abs() <= 0.5) & dense).sum()),
                     "cells with replicas at chance": int((t["at_chance"] > 0).sum())})  # fmt: skip
    return pd.DataFrame(rows)


def ablation(runs: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Each variant of a protocol (`paper-<hash>`, one reading changed) against the plain protocol on the cells both
    have: an ablation that covers some tables only is compared like for like there; each side counts all its seeds,
    and says how many replicas that is."""
    cells = tolerance_cells(runs, reference)
    if cells.empty:
        return cells
    keys, rows = ["table", "method", "hidden", "dataset", "ratio"], []
    for (protocol, settings), variant in cells[cells["settings"] != ""].groupby(["protocol", "settings"]):
        base = protocol.rsplit("-", 1)[0]
        both = variant.merge(cells[cells["protocol"] == base], on=keys, suffixes=("", "_base"))
        for data, t in both.groupby("data"):
            rows.append({"protocol": protocol, "settings": settings, "data": data, "cells": len(t),
                         "replicas": int(t["n"].sum()), "within": int(t["close"].sum()), "base": base,
                         "base replicas": int(t["n_base"].sum()), "base within": int(t["close_base"].sum()),
                         "mean abs Δ": float(t["diff"].abs().mean()),
                         "base mean abs Δ": float(t["diff_base"].abs().mean())})  # fmt: skip
    return pd.DataFrame(rows)


ABLATION_NOTE = ("Each variant (settings changed) against its plain protocol on the cells (table, method, dataset, "
                 "ratio) both have, so a variant run on some tables only is compared like for like: cells within the "
                 "paper's tolerance and mean |ours − paper|, the variant's, then the plain protocol's (each side's "
                 "cells over all its seeds; the replicas columns count them).")


PAPER_RUNS = 5  # the paper's means and standard deviations are over 5 runs per cell


def method_order(runs: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per protocol variant, every pair of the paper's pruning methods at one (dataset, hidden units, ratio) that the
    paper's tables separate significantly (Welch t from its means and standard deviations, 5 runs each, unadjusted
    5 % level: each cell is read as the paper would be) and that our runs hold on both sides: the paper's and our
    difference (ours paired by seed, `claims.difference`) and whether ours goes the same way (issue 11's goal on the
    variants: the same order of methods wherever the paper's difference is significant)."""
    keys = ["hidden", "dataset", "ratio"]
    pairs = reference.merge(reference, on=keys, suffixes=("_a", "_b"))
    pairs = pairs[pairs["method_a"] < pairs["method_b"]]
    paper = ttest_ind_from_stats(pairs["mean_pct_a"], pairs["std_pct_a"], PAPER_RUNS, pairs["mean_pct_b"],
                                 pairs["std_pct_b"], PAPER_RUNS, equal_var=False)  # fmt: skip
    pairs = pairs.assign(paper_diff=pairs["mean_pct_a"] - pairs["mean_pct_b"], paper_p=paper.pvalue)
    # One at a time at 5 %, a dataset's 66 pairs would let about 3 through by chance were all tied: Holm over them
    # says which separations the paper's tables support as a family.
    pairs["paper_p_holm"] = pairs.groupby("dataset")["paper_p"].transform(lambda p: multipletests(p, method="holm")[1])
    pairs = pairs[pairs["paper_p"] < claims.ALPHA]
    mlp, rows = runs[runs["model"] == "mlp"], []
    for (protocol, settings), sel in mlp.groupby(["protocol", "settings"]):
        cells = {key: claims.by_seed(cell) for key, cell in sel.groupby(["method", *keys])}
        for _, pair in pairs.iterrows():
            a, b = (cells.get((pair[f"method_{side}"], *pair[keys])) for side in "ab")
            if a is None or b is None:
                continue
            ours = claims.difference(a, b, paired=True)
            if np.isnan(ours["A - B"]):  # no seed on both sides: nothing paired to compare
                continue
            sign, significant = np.sign(ours["A - B"]), ours["p"] < claims.ALPHA
            order = ("same" if sign == np.sign(pair["paper_diff"]) else "tied" if sign == 0
                     else "reversed, significant" if significant else "reversed")  # fmt: skip
            rows.append({"protocol": protocol, "settings": settings, **pair[keys].to_dict(),
                         "pair": f"{pair['method_a']} - {pair['method_b']}", "paper": pair["paper_diff"],
                         "paper p": pair["paper_p"], "paper p (Holm)": pair["paper_p_holm"], "ours": ours["A - B"],
                         "ours p": ours["p"], "n": ours["n"],
                         "order": order})  # fmt: skip
    return pd.DataFrame(rows)


# Figure 6's networks (50 hidden units, ratio 0.04, MagL1 and MagL2 on MNIST): "the last pruning has been performed
# in epoch 210" (the paper's text), a check of a protocol's timing that needs no table.
FIGURE6 = {"hidden": 50, "ratio": 0.04, "dataset": "mnist", "methods": ("magl1", "magl2"), "last_pruning_epoch": 210}


def figure6_timing(runs: pd.DataFrame) -> pd.DataFrame:
    """Per protocol variant and method, the epochs trained before the last pruning step of Figure 6's networks."""
    cell = (runs["hidden"] == FIGURE6["hidden"]) & np.isclose(runs["ratio"], FIGURE6["ratio"])
    cell &= (runs["dataset"] == FIGURE6["dataset"]) & runs["method"].isin(FIGURE6["methods"])
    if "last_pruning_epoch" not in runs.columns or not (cell & runs["last_pruning_epoch"].notna()).any():
        return pd.DataFrame()
    sel = runs[cell & runs["last_pruning_epoch"].notna()]
    epochs = sel.groupby(["protocol", "settings", "method"])["last_pruning_epoch"]
    table = epochs.agg(n="size", mean="mean", low="min", high="max").reset_index()
    table["paper"] = FIGURE6["last_pruning_epoch"]
    return table


def tolerance_totals(counts: pd.DataFrame) -> pd.DataFrame:
    """`within_tolerance` summed over the tables, per protocol variant and data (MNIST, the variants); the mean abs Δ
    weighted by each table's cells."""
    keys = ["protocol", "settings", "data"]
    totals = counts.assign(**{"mean abs Δ": counts["mean abs Δ"] * counts["cells"]}).groupby(keys)[counts.columns[4:]].sum()
    return totals.assign(**{"mean abs Δ": totals["mean abs Δ"] / totals["cells"]}).reset_index()


def order_counts(order: pd.DataFrame) -> pd.DataFrame:
    """`method_order` counted per protocol variant and dataset: pairs compared, same order, tied, reversed."""
    counted = order.groupby(["protocol", "settings", "dataset"])["order"]
    counts = counted.agg(pairs="size", same=lambda o: int((o == "same").sum()), tied=lambda o: int((o == "tied").sum()),
                       reversed=lambda o: int(o.str.startswith("reversed").sum()),
                       **{"reversed, significant": lambda o: int((o == "reversed, significant").sum())}).reset_index()  # fmt: skip
    family = order[order["paper p (Holm)"] < claims.ALPHA].groupby(["protocol", "settings", "dataset"])["order"]
    holm = family.agg(**{"pairs (Holm)": "size", "same (Holm)": lambda o: int((o == "same").sum())})
    return counts.merge(holm, on=["protocol", "settings", "dataset"], how="left").fillna(0).astype(
        {"pairs (Holm)": int, "same (Holm)": int})


ORDER_NOTE = ("Pairs of the paper's pruning methods at one dataset, hidden size and ratio whose difference the paper's "
              f"tables make significant (Welch t from its means and standard deviations, {PAPER_RUNS} runs each, "
              f"unadjusted {claims.ALPHA:.0%} level), where we have both: does our difference (paired by seed) go the "
              "same way? The `(Holm)` columns keep the pairs the paper's tables still separate with Holm-Bonferroni "
              "over all pairs of one dataset.")  # fmt: skip


def write_fidelity(runs: pd.DataFrame, out: Path, reference: pd.DataFrame) -> Path:
    """fidelity.md: which protocol variant reproduces the paper's tables, and how closely."""
    counts = within_tolerance(runs, reference)
    lines = ["# Fidelity: our tables against the paper's, per protocol variant", "",
             "A cell is within tolerance when |ours − paper| <= max(1 point, 2 × the paper's std); the 0 %-removed "
             "cells are also counted within ±0.5. Variants of one protocol name differ in the settings shown.", ""]  # fmt: skip
    if counts.empty:
        lines.append("No paper-table cell has runs yet.")
    else:
        lines += ["## All tables", "", tolerance_totals(counts).to_markdown(index=False, floatfmt=".2f"), "",
                  "## Per table", "", counts.to_markdown(index=False, floatfmt=".2f")]  # fmt: skip
        readings = ablation(runs, reference)
        if not readings.empty:
            lines += ["", "## Ablation", "", ABLATION_NOTE, "", readings.to_markdown(index=False, floatfmt=".2f")]
    order = method_order(runs, reference)
    if not order.empty:
        lines += ["", "## Order of methods", "", ORDER_NOTE, "", order_counts(order).to_markdown(index=False)]
        unlike = order[order["order"] != "same"]
        if len(unlike):
            lines += ["", "Tied or reversed pairs (accuracy points, A - B):", "",
                      unlike.to_markdown(index=False, floatfmt=".3g")]  # fmt: skip
    timing = figure6_timing(runs)
    if not timing.empty:
        lines += ["", "## Figure 6's timing", "", f"Epochs trained before the last pruning step of Figure 6's networks "
                  f"({FIGURE6['hidden']} hidden units, ratio {FIGURE6['ratio']}, MNIST); the paper: \"the last pruning has "
                  f"been performed in epoch {FIGURE6['last_pruning_epoch']}\".", "",
                  timing.to_markdown(index=False, floatfmt=".0f")]  # fmt: skip
    path = out / "fidelity.md"
    path.write_text("\n".join(lines) + "\n")
    return path


PAPER_PRUNING = [(method, "mlp") for method in claims.PRUNING]
FIGURES = {  # number: (dataset, the paper's compressed models drawn as (method, model) curves, see `figure_models`)
    1: ("mnist", [("none", "hashednet")]),
    2: ("mnist", PAPER_PRUNING),
    3: ("mnist_rot", PAPER_PRUNING),
    4: ("mnist_back_rand", PAPER_PRUNING),
    5: ("mnist_back_image", PAPER_PRUNING),
}
OTHER_MARKERS = "^vDP*Xh"  # the curves of methods the paper did not test: one marker per method, never the paper's o


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, stem: Path) -> Path:
    """Write `fig` as PNG and PDF next to each other; returns the PNG."""
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        fig.savefig(stem.with_suffix(suffix))
    pyplot().close(fig)
    return stem.with_suffix(".png")


def accuracy_curves(runs: pd.DataFrame, dataset: str, models, protocol: str, size: str = "parameters") -> tuple[dict, str]:
    """Curves label -> points (p: `size`, m: accuracy mean, s: std): each (method, model) of `models`, one curve per
    hidden size, and the Pareto front in `size` of each ConvNet variant trained and tested on the same data; with
    the data they were computed on."""
    mlps = runs[(runs["protocol"] == protocol) & (runs["dataset"] == dataset)].dropna(subset=[size])
    curves = {}
    for method, model in models:
        for hidden, sel in mlps[(mlps["method"] == method) & (mlps["model"] == model)].groupby("hidden"):
            g = sel.groupby("ratio").agg(p=(size, "mean"), m=("acc", "mean"), s=("acc", "std"))
            curves[f"{model if model != 'mlp' else method}, {hidden} hidden"] = g.sort_values("p")
    data_keys = set(mlps["data_key"]) if len(mlps) else None
    for label, conv in convnet_variants(runs, dataset, data_keys).items():
        front = convnet_front(conv, size).rename(columns={size: "p", "acc": "m"})
        if len(front):
            curves[f"ConvNet front ({label})"] = front.assign(s=float("nan"))
    return curves, "; ".join(sorted(set(mlps["data"]))) or "no MLP runs"


def figure_models(runs: pd.DataFrame, number: int) -> list[tuple[str, str]]:
    """The (method, model) curves of Figure `number`: the paper's, then on a panel of pruned MLPs (2-5) every pruning
    method the paper did not test, sorted (those without runs on its data draw nothing)."""
    models = FIGURES[number][1]
    if all(model == "mlp" for _, model in models):
        models = models + [(method, "mlp") for method in claims.other_methods(runs)]
    return models


def figure_curves(runs: pd.DataFrame, number: int, protocol: str) -> tuple[dict, str]:
    """The curves of one of the paper's Figures 1-5 (accuracy vs parameters)."""
    return accuracy_curves(runs, FIGURES[number][0], figure_models(runs, number), protocol)


def bytes_curves(runs: pd.DataFrame, dataset: str, protocol: str) -> tuple[dict, str]:
    """Accuracy vs the artefacts' bytes on disk: every method and model with artefacts on `dataset`."""
    sel = runs[(runs["dataset"] == dataset) & (runs["model"] != "convnet") & runs["bytes"].notna()]
    models = sorted(set(zip(sel["method"], sel["model"])))
    return accuracy_curves(runs, dataset, models, protocol, "bytes")


def draw(curves: dict, xlabel: str, title: str, empty: str, stem: Path, others: list[str]) -> Path:
    """Plot `curves` (see `accuracy_curves`); those of `others`, methods the paper did not test, in colours given
    outright so the paper's curves and the ConvNet fronts keep the colours they have without them."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colours = cycle(plt.get_cmap("Dark2").colors)
    for label, g in curves.items():
        method = label.split(",")[0]
        if label.startswith("ConvNet"):
            ax.plot(g["p"], g["m"], "--", marker="s", ms=3, label=label)
        elif method in others:
            marker = OTHER_MARKERS[others.index(method) % len(OTHER_MARKERS)]
            ax.errorbar(g["p"], g["m"], yerr=g["s"].fillna(0), ls=":", marker=marker, ms=4, capsize=2,
                        color=next(colours), label=label)  # fmt: skip
        else:
            ax.errorbar(g["p"], g["m"], yerr=g["s"].fillna(0), marker="o", ms=3, capsize=2, label=label)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    if curves:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center")
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, stem)


def protocol_title(runs: pd.DataFrame, protocol: str) -> str:
    """`protocol paper-bc72e2 (pruning.timing.trigger_lag=1)`: a variant's label with what sets it apart."""
    settings = "; ".join(sorted(set(runs.loc[runs["protocol"] == protocol, "settings"]) - {""}))
    return f"protocol {protocol}" + (f" ({settings})" if settings else "")


def figure(runs: pd.DataFrame, number: int, protocol: str, out: Path) -> Path:
    curves, data = figure_curves(runs, number, protocol)
    return draw(curves, "parameters (weights kept + biases)", f"Figure {number}: {FIGURES[number][0]}, "
                f"{protocol_title(runs, protocol)}\n{data}", "no runs yet", out / f"fig{number}_{protocol}",
                claims.other_methods(runs))  # fmt: skip


def bytes_figure(runs: pd.DataFrame, dataset: str, protocol: str, out: Path) -> Path:
    curves, data = bytes_curves(runs, dataset, protocol)
    return draw(curves, "artefact size on disk (bytes)", f"Accuracy vs bytes: {dataset}, "
                f"{protocol_title(runs, protocol)}\n{data}",
                "no artefacts yet (train with export=true)", out / f"bytes_{dataset}_{protocol}",
                claims.other_methods(runs))  # fmt: skip


def bytes_section(runs: pd.DataFrame, protocols) -> list[str]:
    """summary.md's comparison with ConvNets at equal bytes on disk instead of equal parameters."""
    lines = ["", "## At equal bytes on disk", "",
             "The two claims comparing models, re-tested with size counted as the artefact's bytes (`export=true`) "
             "instead of parameters: a pruned weight carries its index (CSR), a hashed weight carries none, ConvNets "
             "and dense MLPs are stored dense. Same tests as above, on the replicas that have artefacts.", ""]  # fmt: skip
    with_bytes = runs[runs["bytes"].notna()]
    if with_bytes.empty:
        return lines + ["Not tested: no stored replica has an artefact (train with `export=true`, or run "
                        "`python -m nncompress.artefact.export` on runs saved with `save_model=true`)."]  # fmt: skip
    table = claims.comparisons(with_bytes, size="bytes")
    sized = [claims.PRUNING_VS_CONVNET, claims.CONVNET_VS_HASHEDNET]
    verdicts = claims.verdicts(table, protocols)
    lines.append(verdicts[verdicts["claim"].isin(sized)].to_markdown(index=False))
    if not table.empty and table["claim"].isin(sized).any():
        lines += ["", table[table["claim"].isin(sized)].to_markdown(index=False, floatfmt=".3g")]
    return lines


def histogram_figure(runs: pd.DataFrame, out: Path, hidden: int = 50, ratio: float = 0.04) -> Path | None:
    """Figure 6: the last saved weight histogram of the first seed of MagL1 and of MagL2 (hidden 50, ratio 0.04, on
    MNIST as in the paper), one per protocol variant."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    drawn = []
    runs = runs[(runs["hidden"] == hidden) & (runs["ratio"] == ratio) & (runs["dataset"] == "mnist")]
    for (method, protocol), sel in runs[runs["method"].isin(["magl1", "magl2"])].groupby(["method", "protocol"]):
        for _, r in sel.sort_values("seed").iterrows():
            files = sorted(Path(r["run_dir"]).glob("histograms/epoch*.npz"), key=lambda p: int(p.stem[5:]))
            if not files:
                continue
            with np.load(files[-1]) as h:
                names, name = list(h["replicas"]), f"seed{r['seed']}_ratio{ratio:g}"
                i = names.index(f"{r['dataset']}_{name}" if f"{r['dataset']}_{name}" in names else name)  # older runs: no dataset
                counts, edges = h["counts"][i], h["edges"][i]
            ax.stairs(counts / counts.sum(), edges,
                      label=f"{method}, {protocol} (seed {r['seed']}, after {files[-1].stem[5:]} epochs)")
            drawn.append(r["data"])
            break
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("weight value (kept weights)")
    ax.set_ylabel("fraction of weights")
    ax.set_title(f"Figure 6: {hidden} hidden units, ratio {ratio:g}, MNIST; {'; '.join(sorted(set(drawn)))}", fontsize=9)
    ax.legend()
    return save(fig, out / "fig6")


def variants(runs: pd.DataFrame) -> pd.DataFrame:
    """What was read: per model, protocol variant and dataset, the variant's settings, its data and replica count."""
    keys = ["model", "protocol", "settings", "dataset", "data"]
    counts = runs.groupby(keys).agg(replicas=("seed", "size"), seeds=("seed", "nunique"))
    return counts.reset_index()


def write_summary(runs: pd.DataFrame, out: Path) -> Path:
    table = claims.comparisons(runs)
    protocols = sorted(set(runs.loc[runs["model"] != "convnet", "protocol"]))
    regenerated = sorted(set(runs.loc[runs["source"] == "regenerated", "dataset"]))
    lines = [
        "# Summary: the paper's conclusions re-tested on our runs",
        "",
        f"Read from {len(runs)} stored replicas. A = the side the paper says is at least as good; A - B in accuracy "
        "points with its 95 % confidence interval. Methods compared in one cell share each seed's initialisation and "
        "data order, so they are paired by seed (paired t-test); ConvNets and MLPs are not (Welch t-test). p-values "
        f"are Holm-adjusted over the tested cells of each claim and protocol; verdicts at the {claims.ALPHA:.0%} level. "
        f"High compression = ratio <= {claims.HIGH_COMPRESSION}. ConvNets are compared at equal or smaller parameter "
        "count, choosing the best Pareto-front setting (selected on validation accuracy when available). A cell with "
        "fewer than two seeds on a side is not tested. Replicas that learned nothing (training accuracy within 1 "
        "point of always answering the commonest class) are kept, being what their method gave; `at chance` counts "
        "them per cell. A pruning method the paper did not test is A in a claim of its "
        "own against each of the paper's (`method >= paper method`), in every cell they share.",
        "",
        "Datasets regenerated from MNIST rather than the original files: " + (", ".join(regenerated) or "none") + ".",
        "",
        "## Verdicts",
        "",
        "A claim fails where a cell contradicts it significantly, holds where cells were tested and none does.",
        "",
        claims.verdicts(table, protocols).to_markdown(index=False),
        "",
        "## Runs read",
        "",
        "Replicas are pooled only within one protocol variant (settings as shown) and one dataset's data.",
        "",
        variants(runs).to_markdown(index=False) if len(runs) else "none",
    ]
    if not table.empty:
        lines += ["", "## Every comparison", "", table.to_markdown(index=False, floatfmt=".3g")]
        disagree = table[(table["verdict"] == "CONTRADICTS") & table["claim"].isin(claims.CLAIMS)]
        lines += ["", "## Where we disagree with the paper (significant after Holm)", ""]
        for _, r in disagree.iterrows():
            lines.append(f"- {r['claim']} ({r['comparison']}): {r['dataset']}, ratio {r['ratio']:g}, {r['hidden']} "
                         f"hidden, protocol {r['protocol']}: A - B = {r['A - B']:.2f} points "
                         f"[{r['ci low']:.2f}, {r['ci high']:.2f}], p (Holm) = {r['p (Holm)']:.3g}"
                         + (f"; {r['at chance']} of its replicas at chance" if r["at chance"] else ""))  # fmt: skip
        if disagree.empty:
            lines.append("- in no tested cell")
    # the paper's own tables are in tableN_<protocol>.md, beside its numbers
    others = [markdown(t, None, protocol, variant_data(runs, protocol))
              for protocol in protocols for t in method_tables(runs, protocol).values()]  # fmt: skip
    lines += ["", *others] if others else []
    lines += bytes_section(runs, protocols)
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def check_out(out: Path) -> None:
    """`--out` a file is refused in one line before anything is read or written (a store that is not one is the
    store's to refuse: `ResultStore.open`)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")


def write_report(runs: pd.DataFrame, reference: pd.DataFrame, stores, out: Path) -> list:
    """Every file of the report, written into `out`; returns what to print, in order: the files (paths) and notes."""
    from .html_report import write_html  # the page builds on this module

    lines = write_tables(runs, out, reference)
    mlp_protocols = sorted(set(runs.loc[runs["model"] != "convnet", "protocol"])) or ["fast"]
    drawn = {figure(runs, number, protocol, out): figure_curves(runs, number, protocol)[0]
             for protocol in mlp_protocols for number in FIGURES}  # fmt: skip
    with_bytes = sorted(set(runs.loc[runs["bytes"].notna(), "dataset"]))
    drawn |= {bytes_figure(runs, dataset, protocol, out): bytes_curves(runs, dataset, protocol)[0]
              for protocol in mlp_protocols for dataset in with_bytes}  # fmt: skip
    lines += drawn
    fig6 = histogram_figure(runs, out)
    figures = [png for png, curves in drawn.items() if curves] + ([fig6] if fig6 else [])  # the page skips empty ones
    if not fig6:
        lines.append("fig6: no MagL1/MagL2 runs with saved histograms (+experiment=fig6)")
    return lines + [write_fidelity(runs, out, reference), write_summary(runs, out),
                    write_html(runs, out, reference, figures, stores)]  # fmt: skip


@contextmanager
def staging(out: Path):
    """A fresh folder beside `out` (same filesystem, so its files move in by rename), removed on the way out
    whatever happens: a report that fails half-way leaves nothing behind."""
    real = out.resolve()  # `--out .` or a link to another filesystem: beside the folder itself
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=real.parent, prefix=f".{real.name}-"))
    except OSError as err:
        raise UserError(f"cannot write the report in {out}: {err.strerror}: {err.filename}") from err
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# What a report writes under names that depend on the store (protocol variants, datasets): a file of these names that
# the new report did not write is removed, so a variant no longer in the store (its label changes with the settings
# beside it) leaves no stale file. The report's other files (fidelity.md, summary.md, index.html) are always rewritten.
GENERATED = ("table*.md", "table*.csv", "fig*.png", "fig*.pdf", "bytes_*.png", "bytes_*.pdf")


def publish(stage: Path, out: Path) -> None:
    """Move the complete new report from `stage` into `out`, each file replaced at once (never missing meanwhile),
    then remove the last report's files the new one does not have; files the report does not write stay."""
    out.mkdir(exist_ok=True)
    new = {path.name for path in stage.iterdir()}
    for name in sorted(new):
        os.replace(stage / name, out / name)
    for pattern in GENERATED:
        for path in out.glob(pattern):
            if path.name not in new:
                path.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=[os.environ.get("NNCOMPRESS_RESULTS_DIR", "multirun/results")],
                        help="results stores, read together (a replica in several: the last one's record)")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    out = Path(args.out)
    with exit_on_user_error():
        check_out(out)
        runs, reference = load_results(*args.results), pd.read_csv(REFERENCE)
        if runs.empty:
            raise UserError(f"no stored replica could be read from {', '.join(args.results)}"
                            + (f" ({len(runs.attrs['left_out'])} unusable entries, see the warning above)" if runs.attrs["left_out"] else ""))
        with staging(out) as stage:
            lines = write_report(runs, reference, args.results, stage)
            publish(stage, out)
    for line in lines:
        print(out / line.name if isinstance(line, Path) else line)
    left_out = runs.attrs["left_out"]
    print(f"{len(runs)} stored replicas read from {', '.join(args.results)}"
          + (f"; {len(left_out)} unusable entr{'y' if len(left_out) == 1 else 'ies'} left out (see the warning above)"
             if left_out else ""))  # fmt: skip


if __name__ == "__main__":
    main()
