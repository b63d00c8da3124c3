"""`make paper-figures`: the paper's tables and figures regenerated from the results store.

    python -m nncompress.report [--results multirun/results] [--out reports]

Reads only the local results store (never W&B). Writes, per paper table and protocol found,
`tableN_<protocol>.md` and `.csv` (`<protocol>-<hash>` where runs under one protocol name were trained with
different settings, see `TRAINING_SETTINGS`): rows = edges removed, columns = datasets, our mean ± std over seeds (sample
std, as the paper), the paper's value and the difference, in percent; cells without runs show as "—". And
Figures 1-5 (`figN.png` / `.pdf`): test accuracy vs parameters, log x, with the ConvNet Pareto front (selected on
validation accuracy when the ConvNets have a validation split) as a line; and per dataset, accuracy vs the
artefacts' bytes on disk (`bytes_<dataset>_<protocol>.png`, replicas trained with `export=true`).
"""
import argparse
import hashlib
import json
from pathlib import Path

import pandas as pd

from . import claims
from .pareto import convnet_front
from .results import ResultStore

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "paper_tables.csv"
DATASETS = ["mnist", "mnist_back_image", "mnist_back_rand", "mnist_rot"]  # the paper's column order


# Config keys that say how a network was trained, whatever the method or model: runs that share a protocol name
# but differ in these (say `protocol.lr=0.01` beside the default) are reported apart, never pooled.
TRAINING_SETTINGS = ("protocol", "schedule", "precision", "pruning_scope", "common_random_numbers")


def protocol_labels(records: list[dict]) -> list[str]:
    """The protocol's name, suffixed with a short hash of the training settings where runs under that name differ."""
    settings = [json.dumps({k: r["config"].get(k) for k in TRAINING_SETTINGS}, sort_keys=True) for r in records]
    names = [r["config"]["protocol"]["name"] for r in records]
    variants: dict[str, set] = {}
    for name, setting in zip(names, settings):
        variants.setdefault(name, set()).add(setting)
    return [
        name if len(variants[name]) == 1 else f"{name}-{hashlib.sha1(setting.encode()).hexdigest()[:6]}"
        for name, setting in zip(names, settings)
    ]


def load_store(root) -> pd.DataFrame:
    """One row per stored replica: what names its cell, its seed, and its test accuracy in percent."""
    records = ResultStore(root).records()
    if not records:
        return pd.DataFrame(columns=["method", "model", "hidden", "protocol", "dataset", "source", "ratio", "seed", "acc", "bytes"])
    return pd.DataFrame(
        {
            "method": [r["config"]["method"]["name"] for r in records],
            "model": [r["config"]["model"]["name"] for r in records],
            "hidden": [r["config"]["hidden"] for r in records],
            "protocol": protocol_labels(records),
            "dataset": [r["dataset"] for r in records],
            "source": [r["source"] for r in records],
            "ratio": [r["ratio"] for r in records],
            "seed": [r["seed"] for r in records],
            "acc": [100 * r["test_acc"] for r in records],
            "parameters": [r["parameters"] for r in records],
            "bytes": [r.get("artefact_bytes", float("nan")) for r in records],  # older records: no artefact
            "val_acc": [100 * r.get("val_acc", float("nan")) for r in records],
            "architecture": [architecture(r["config"]["model"]) for r in records],
            "run_dir": [r.get("run_dir", "") for r in records],
        }
    )


def architecture(model: dict) -> str:
    """A ConvNet's setting as a short label (empty for other models)."""
    if model["name"] != "convnet":
        return ""
    return "k{kernel}-c{channels}-s{stride}-p{pool}-d{dropout}".format(**model)


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


FIGURES = {  # number: (dataset, compressed models drawn as (method, model) curves)
    1: ("mnist", [("none", "hashednet")]),
    2: ("mnist", [("magl1", "mlp"), ("magl2", "mlp"), ("obd", "mlp")]),
    3: ("mnist_rot", [("magl1", "mlp"), ("magl2", "mlp"), ("obd", "mlp")]),
    4: ("mnist_back_rand", [("magl1", "mlp"), ("magl2", "mlp"), ("obd", "mlp")]),
    5: ("mnist_back_image", [("magl1", "mlp"), ("magl2", "mlp"), ("obd", "mlp")]),
}


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


def figure(runs: pd.DataFrame, number: int, protocol: str, out: Path) -> Path:
    plt = pyplot()
    dataset, curves = FIGURES[number]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, model in curves:
        sel = runs[(runs["method"] == method) & (runs["model"] == model) & (runs["dataset"] == dataset)]
        sel = sel[(sel["protocol"] == protocol) & ((sel["hidden"] == 100) | (model != "mlp"))]
        if sel.empty:
            continue
        g = sel.groupby("ratio").agg(p=("parameters", "mean"), m=("acc", "mean"), s=("acc", "std")).sort_values("p")
        label = model if model != "mlp" else method
        ax.errorbar(g["p"], g["m"], yerr=g["s"].fillna(0), marker="o", ms=3, capsize=2, label=label)
    finish_accuracy_axes(ax, runs, dataset, "parameters", "parameters (weights kept + biases)",
                         f"Figure {number}: {dataset}, protocol {protocol}", "no runs yet")  # fmt: skip
    return save(fig, out / f"fig{number}_{protocol}")


def finish_accuracy_axes(ax, runs: pd.DataFrame, dataset: str, size: str, xlabel: str, title: str, empty: str) -> None:
    """The ConvNet Pareto front in `size` as a dashed line, log x, labels, and a legend (or `empty` if none)."""
    front = convnet_front(runs, dataset, size)
    if not front.empty:
        ax.plot(front[size], front["acc"], "k--", marker="s", ms=3, label="ConvNet Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    if ax.lines or ax.collections:
        ax.legend()
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center")
    ax.grid(True, which="both", alpha=0.3)


def bytes_figure(runs: pd.DataFrame, dataset: str, protocol: str, out: Path) -> Path:
    """Test accuracy vs the artefact's bytes on disk, every method and model that has artefacts, with the ConvNet
    Pareto front in bytes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sel = runs[(runs["dataset"] == dataset) & runs["bytes"].notna()]
    for (model, method), curve in sel[(sel["model"] != "convnet") & (sel["protocol"] == protocol)].groupby(["model", "method"]):
        g = curve.groupby(["hidden", "ratio"]).agg(b=("bytes", "mean"), m=("acc", "mean"), s=("acc", "std")).sort_values("b")
        ax.errorbar(g["b"], g["m"], yerr=g["s"].fillna(0), marker="o", ms=3, capsize=2, label=method if model == "mlp" else model)
    finish_accuracy_axes(ax, runs, dataset, "bytes", "artefact size on disk (bytes)",
                         f"Accuracy vs bytes: {dataset}, protocol {protocol}", "no artefacts yet (train with export=true)")  # fmt: skip
    return save(fig, out / f"bytes_{dataset}_{protocol}")


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
    """Figure 6: the last saved weight histogram of the first seed of MagL1 and of MagL2 (hidden 50, ratio 0.04)."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    drawn = []
    for method in ("magl1", "magl2"):
        sel = runs[(runs["method"] == method) & (runs["hidden"] == hidden) & (runs["ratio"] == ratio)].sort_values("seed")
        for _, r in sel.iterrows():
            files = sorted(Path(r["run_dir"]).glob("histograms/epoch*.npz"), key=lambda p: int(p.stem[5:]))
            if not files:
                continue
            with np.load(files[-1]) as h:
                names, name = list(h["replicas"]), f"seed{r['seed']}_ratio{ratio:g}"
                i = names.index(f"{r['dataset']}_{name}" if f"{r['dataset']}_{name}" in names else name)  # older runs: no dataset
                counts, edges = h["counts"][i], h["edges"][i]
            ax.stairs(counts / counts.sum(), edges, label=f"{method} (seed {r['seed']}, after {files[-1].stem[5:]} epochs)")
            drawn.append(method)
            break
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("weight value (kept weights)")
    ax.set_ylabel("fraction of weights")
    ax.set_title(f"Figure 6: {hidden} hidden units, ratio {ratio:g}")
    ax.legend()
    return save(fig, out / "fig6")


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
        "fewer than two seeds on a side is not tested.",
        "",
        "Datasets regenerated from MNIST rather than the original files: " + (", ".join(regenerated) or "none") + ".",
        "",
        "## Verdicts",
        "",
        "A claim fails where a cell contradicts it significantly, holds where cells were tested and none does.",
        "",
        claims.verdicts(table, protocols).to_markdown(index=False),
    ]
    if not table.empty:
        lines += ["", "## Every comparison", "", table.to_markdown(index=False, floatfmt=".3g")]
        disagree = table[table["verdict"] == "CONTRADICTS"]
        lines += ["", "## Where we disagree with the paper (significant after Holm)", ""]
        for _, r in disagree.iterrows():
            lines.append(f"- {r['claim']} ({r['comparison']}): {r['dataset']}, ratio {r['ratio']:g}, {r['hidden']} "
                         f"hidden, protocol {r['protocol']}: A - B = {r['A - B']:.2f} points "
                         f"[{r['ci low']:.2f}, {r['ci high']:.2f}], p (Holm) = {r['p (Holm)']:.3g}")  # fmt: skip
        if disagree.empty:
            lines.append("- in no tested cell")
    lines += bytes_section(runs, protocols)
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


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
    mlp_protocols = sorted(set(runs.loc[runs["model"] != "convnet", "protocol"])) or ["fast"]
    for protocol in mlp_protocols:
        for number in FIGURES:
            print(figure(runs, number, protocol, out))
        for dataset in sorted(set(runs["dataset"])):
            print(bytes_figure(runs, dataset, protocol, out))
    print(histogram_figure(runs, out) or "fig6: no MagL1/MagL2 runs with saved histograms (+experiment=fig6)")
    print(write_summary(runs, out))
    print(f"{len(runs)} stored replicas read from {args.results}")


if __name__ == "__main__":
    main()
