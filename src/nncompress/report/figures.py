"""The paper's Figures 1-5 (test accuracy vs parameters, log x, one curve per hidden size, with the Pareto front of
each ConvNet variant on the same data), accuracy vs bytes on disk and vs FLOPs per dataset (`SIZES`), and Figure 6
(weight histograms), each as PNG and PDF."""
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd

from ..pareto import convnet_front, convnet_variants
from .paper import PRUNING, other_methods
from .stats import variant_data

FIGURES = {  # number: (dataset, the role of the compressed models it draws, see `figure_models`)
    1: ("mnist", "sized"),  # HashedNet
    2: ("mnist", "pruned"),  # the pruned MLPs
    3: ("mnist_rot", "pruned"),
    4: ("mnist_back_rand", "pruned"),
    5: ("mnist_back_image", "pruned"),
}
# The sizes besides parameters that accuracy is drawn against, per dataset: (x label, name, the empty figure's note).
SIZES = {
    "bytes": ("artefact size on disk (bytes)", "bytes", "no artefacts yet (train with export=true)"),
    "flops": ("multiply-adds of one example's forward pass (FLOPs)", "FLOPs", "no FLOPs recorded"),
}
OTHER_MARKERS = "^vDP*Xh"  # the curves of methods the paper did not test: one marker per method, never the paper's o


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, stem: Path) -> Path:
    """Write `fig` as PNG and PDF next to each other; returns the PNG. (A stem may hold dots, `fig2_paper_lr=1.0`:
    suffixes are appended, never swapped in.)"""
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        fig.savefig(f"{stem}{suffix}")
    pyplot().close(fig)
    return Path(f"{stem}.png")


def accuracy_curves(runs: pd.DataFrame, dataset: str, models, protocol: str, size: str = "parameters") -> tuple[dict, str]:
    """Curves label -> points (p: `size`, m: accuracy mean, s: std): each (method, model) of `models`, one curve per
    hidden size, and the Pareto front in `size` of each ConvNet variant trained and tested on the same data; with
    the data they were computed on."""
    mlps = runs[(runs["protocol"] == protocol) & (runs["dataset"] == dataset)].dropna(subset=[size])
    curves = {}
    for method, model in models:
        for hidden, sel in mlps[(mlps["method"] == method) & (mlps["model"] == model)].groupby("hidden"):
            g = sel.groupby("ratio").agg(p=(size, "mean"), m=("acc", "mean"), s=("acc", "std"))
            curves[f"{method if sel['role'].iat[0] == 'pruned' else model}, {hidden} hidden"] = g.sort_values("p")
    data_keys = set(mlps["data_key"]) if len(mlps) else None
    for label, conv in convnet_variants(runs, dataset, data_keys).items():
        front = convnet_front(conv, size).rename(columns={size: "p", "acc": "m"})
        if len(front):
            curves[f"ConvNet front ({label})"] = front.assign(s=float("nan"))
    return curves, "; ".join(sorted(set(mlps["data"]))) or "no MLP runs"


def figure_models(runs: pd.DataFrame, number: int) -> list[tuple[str, str]]:
    """The (method, model) curves of Figure `number`: on a panel of pruned models (2-5) the paper's methods, then
    every pruning method it did not test, sorted; on Figure 1 each family its ratio sizes (those without runs on the
    figure's data draw nothing)."""
    role = FIGURES[number][1]
    families = sorted(set(runs.loc[runs["role"] == role, "model"]))
    if role != "pruned":
        return [(method, model) for model in families for method in sorted(set(runs.loc[runs["model"] == model, "method"]))]
    return [(method, model) for model in families for method in (*PRUNING, *other_methods(runs))]


def figure_curves(runs: pd.DataFrame, number: int, protocol: str) -> tuple[dict, str]:
    """The curves of one of the paper's Figures 1-5 (accuracy vs parameters)."""
    return accuracy_curves(runs, FIGURES[number][0], figure_models(runs, number), protocol)


def size_panels(runs: pd.DataFrame, size: str) -> list[tuple[str, str]]:
    """(protocol, dataset) of each figure of accuracy vs `size` (`SIZES`): where compressed models (pruned or sized)
    have it."""
    sel = runs[runs["role"].isin(["pruned", "sized"]) & runs[size].notna()]
    return sorted(set(zip(sel["protocol"], sel["dataset"])))


def size_curves(runs: pd.DataFrame, size: str, dataset: str, protocol: str) -> tuple[dict, str]:
    """Accuracy vs `size` (`SIZES`): every compressed method and model that has it on `dataset`."""
    sel = runs[(runs["dataset"] == dataset) & runs["role"].isin(["pruned", "sized"]) & runs[size].notna()]
    models = sorted(set(zip(sel["method"], sel["model"])))
    return accuracy_curves(runs, dataset, models, protocol, size)


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
    """`protocol paper_trigger_lag=1 (pruning.timing.trigger_lag=1)`: a variant's label with what sets it apart."""
    settings = variant_data(runs, protocol)["settings"]
    return f"protocol {protocol}" + (f" ({settings})" if settings else "")


def figure(runs: pd.DataFrame, number: int, protocol: str, out: Path) -> Path:
    curves, data = figure_curves(runs, number, protocol)
    return draw(curves, "parameters (weights kept + biases)", f"Figure {number}: {FIGURES[number][0]}, "
                f"{protocol_title(runs, protocol)}\n{data}", "no runs yet", out / f"fig{number}_{protocol}",
                other_methods(runs))  # fmt: skip


def size_figure(runs: pd.DataFrame, size: str, dataset: str, protocol: str, out: Path) -> Path:
    """Accuracy vs `size` on `dataset`, as `<size>_<dataset>_<protocol>.png` / `.pdf`."""
    curves, data = size_curves(runs, size, dataset, protocol)
    xlabel, name, empty = SIZES[size]
    return draw(curves, xlabel, f"Accuracy vs {name}: {dataset}, {protocol_title(runs, protocol)}\n{data}", empty,
                out / f"{size}_{dataset}_{protocol}", other_methods(runs))  # fmt: skip


def histogram_figure(runs: pd.DataFrame, out: Path, hidden: int = 50, ratio: float = 0.04) -> Path | None:
    """Figure 6: the last saved weight histogram of the first seed of MagL1 and of MagL2 (hidden 50, ratio 0.04, on
    MNIST as in the paper), one per protocol variant."""
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
