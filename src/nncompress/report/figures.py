"""The paper's Figures 1-5 (test accuracy vs parameters, log x, one curve per hidden size, with the Pareto front of
each ConvNet variant on the same data; on 2-5 the paper's cells beside ours), accuracy vs bytes on disk and vs FLOPs
per dataset (`SIZES`; against bytes every method and combination with the Pareto frontier over all of them and
published anchors, see `ondisk`), and Figure 6 (weight histograms), each as PNG and PDF. A figure is drawn only where
its protocol variant has runs of its own to show (`write_figures` says why each other one is not), in the colours
and markers of `style`."""
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..pareto import convnet_front, convnet_variants
from . import ondisk
from .paper import PRUNING, REFERENCE, mlp_parameters, other_methods
from .stats import compressed_protocols, variant_data
from .controls import dense_controls, recipe
from .style import LINES, Styles, dense_key, legend_below, log_x, styles, title

FIGURES = {  # number: (dataset, the role of the compressed models it draws, see `figure_models`)
    1: ("mnist", "sized"),  # HashedNet
    2: ("mnist", "pruned"),  # the pruned MLPs
    3: ("mnist_rot", "pruned"),
    4: ("mnist_back_rand", "pruned"),
    5: ("mnist_back_image", "pruned"),
}
ROLES = {"sized": "HashedNets", "pruned": "pruned MLPs"}
# The sizes besides parameters that accuracy is drawn against, per dataset: (x label, name, why none is drawn).
SIZES = {
    "bytes": ("artefact size on disk (bytes)", "bytes", "no stored replica has an artefact (train with `export=true`)"),
    "flops": ("multiply-adds of one example's forward pass (FLOPs)", "FLOPs", "no stored replica has FLOPs"),
}
FIG6 = "no MagL1/MagL2 runs with saved histograms (+experiment=fig6)"


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def canvas(height: float = 5.6):
    """A figure and its axes, laid out by matplotlib's constrained layout (titles, labels and the legend outside
    the axes all kept whole)."""
    return pyplot().subplots(figsize=(8, height), layout="constrained")


def save(fig, stem: Path) -> Path:
    """Write `fig` as PNG and PDF next to each other; returns the PNG. (A stem may hold dots, `fig2_paper_lr=1.0`:
    suffixes are appended, never swapped in.)"""
    for suffix in (".png", ".pdf"):
        fig.savefig(f"{stem}{suffix}")
    pyplot().close(fig)
    return Path(f"{stem}.png")


def points(rows: pd.DataFrame, by: str, size: str, **attrs) -> pd.DataFrame:
    """One point per `by` of `rows` (p: mean `size`, m: mean accuracy, s: its std), smallest first; `attrs` say what
    draws it (`style`, and `hidden` or `variant`)."""
    g = rows.groupby(by).agg(p=(size, "mean"), m=("acc", "mean"), s=("acc", "std")).sort_values("p")
    g.attrs.update(attrs)
    return g


def accuracy_curves(runs: pd.DataFrame, dataset: str, models, protocol: str, size: str = "parameters",
                    dense: bool = True) -> tuple[dict, str]:  # fmt: skip
    """Curves label -> points (see `points`): each (method, model) of `models`, one curve per hidden size; with
    `dense` the unpruned MLPs of every width, one curve per regularizer (`dense_curves`); and the Pareto front in `size` of each
    ConvNet variant trained and tested on the same data. With the data they were computed on."""
    mlps = runs[(runs["protocol"] == protocol) & (runs["dataset"] == dataset)].dropna(subset=[size])
    curves = {}
    for method, model in models:
        for hidden, sel in mlps[(mlps["method"] == method) & (mlps["model"] == model)].groupby("hidden"):
            if sel["role"].iat[0] == "pruned" and not (sel["ratio"] < 1).any():
                continue  # a dense control's width (`dense_curves`), not a pruned net
            key = method if sel["role"].iat[0] == "pruned" else model
            curves[f"{key}, {hidden} hidden"] = points(sel, "ratio", size, style=key, hidden=hidden)
    if dense:
        for name, unpruned in dense_curves(mlps).items():
            curves[f"dense MLP ({name})"] = points(unpruned, "hidden", size, style=dense_key(unpruned["method"].iat[0]))
    return curves | convnet_curves(runs, dataset, mlps, size), "; ".join(sorted(set(mlps["data"]))) or "no MLP runs"


def dense_curves(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The dense control's runs (`controls.dense_controls`), one curve per regularizer, drawn as one method's (the
    one with the most widths, then the first by name: at ratio 1, methods with one regularizer train alike, MagL2
    and OBD to the same weights): method -> its rows."""
    dense, curves = dense_controls(runs), {}
    for regularizer, g in dense.groupby(recipe(dense)):
        method = g.groupby("method")["net"].nunique().sort_index().idxmax()
        name = method if method not in curves else f"{method}, {regularizer.rsplit('.', 1)[-1] or 'no regularizer'}"
        curves[name] = g[g["method"] == method]  # (one method's runs under two regularizers: a curve each)
    return curves


def convnet_curves(runs: pd.DataFrame, dataset: str, mlps: pd.DataFrame, size: str) -> dict:
    """The Pareto front in `size` of each ConvNet variant on `dataset` trained and tested on the data of `mlps`."""
    curves = {}
    data_keys = set(mlps["data_key"]) if len(mlps) else None
    for label, conv in convnet_variants(runs, dataset, data_keys).items():
        front = convnet_front(conv, size).rename(columns={size: "p", "acc": "m"})
        if len(front):
            curves[f"ConvNet front ({label})"] = front.assign(s=float("nan"))
            curves[f"ConvNet front ({label})"].attrs.update(style="convnet", variant=label)
    return curves


def bytes_curves(runs: pd.DataFrame, dataset: str, protocol: str) -> tuple[dict, str]:
    """Accuracy vs bytes on disk (`ondisk.byte_cells`): a curve per combination and network over its ratios
    (`magl1+k5, h300-100`), the dense MLPs (and each of their quantizations) as one curve over their widths, the
    ConvNet fronts in bytes; with the data they were computed on."""
    cells = ondisk.byte_cells(runs)
    cells = cells[(cells["protocol"] == protocol) & (cells["dataset"] == dataset)]
    dense = cells["combination"].str.split("+").str[0] == "dense"
    curves = {}
    for label, g in cells.groupby(cells["combination"].where(dense, cells["combination"] + ", " + cells["net"])):
        combination = g["combination"].iat[0]
        if label != combination and not (g["ratio"] < 1).any():
            continue  # a dense control's width (ratio 1), not a compressed net
        curves[label] = g.sort_values("bytes").rename(columns={"bytes": "p", "acc": "m", "std": "s"})
        curves[label].attrs.update(style=combination.split("+")[0], combination=combination,
                                   **({"net": g["net"].iat[0]} if label != combination else {}))  # fmt: skip
    mlps = runs[(runs["base"] == protocol) & (runs["dataset"] == dataset) & runs["bytes"].notna()]
    return curves | convnet_curves(runs, dataset, mlps, "bytes"), "; ".join(sorted(set(mlps["data"])))


def frontier_and_anchors(front: pd.DataFrame, anchors: pd.DataFrame):
    """What draws the Pareto frontier of a figure against bytes (`ondisk.frontier`: black steps, the best accuracy
    within each size) and the published `anchors` (black stars, each labelled); returns their legend entries."""

    def draw(ax) -> list[Line2D]:
        ax.plot(front["bytes"], front["acc"], color="black", lw=1, drawstyle="steps-post", zorder=1,
                label="Pareto frontier")  # fmt: skip
        for a in anchors.itertuples():
            ax.plot(a.bytes, a.acc, color="black", marker="*", ms=11, ls="none", label=a.name)
            ax.annotate(f"{a.name}\n{a.bytes:,} B, {a.acc:.2f} %", (a.bytes, a.acc), xytext=(-8, 0), fontsize=7,
                        textcoords="offset points", ha="right", va="center")  # fmt: skip
        handles = [Line2D([], [], color="black", lw=1, drawstyle="steps-post",
                          label="Pareto frontier over every method and combination")]  # fmt: skip
        return handles + ([Line2D([], [], color="black", marker="*", ls="none", label="published (labelled)")]
                          if len(anchors) else [])  # fmt: skip

    return draw


def own(curves: dict) -> bool:
    """Whether `curves` hold runs of their protocol variant: ConvNet fronts alone are another variant's."""
    return any(g.attrs["style"] != "convnet" for g in curves.values())


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
    """The curves of one of the paper's Figures 1-5 (accuracy vs parameters); the dense MLPs beside the pruned."""
    dataset, role = FIGURES[number]
    return accuracy_curves(runs, dataset, figure_models(runs, number), protocol, dense=role == "pruned")


def paper_curves(reference: pd.DataFrame, number: int, curves: dict) -> dict:
    """The paper's cells beside our curves of Figure `number`: for each (method, hidden size) drawn that one of its
    Tables 1-6 holds on the figure's dataset, its mean and std per ratio, at the parameters of its 784-hidden-10 MLP
    keeping that ratio of its weights (`paper.mlp_parameters`)."""
    ref = reference[reference["dataset"] == FIGURES[number][0]]
    paper = {}
    for label, g in curves.items():
        cells = ref[(ref["method"] == g.attrs["style"]) & (ref["hidden"] == g.attrs.get("hidden"))].sort_values("ratio")
        if len(cells):
            paper[f"{label} (paper)"] = pd.DataFrame({"p": mlp_parameters(cells["hidden"], cells["ratio"]),
                                                      "m": cells["mean_pct"], "s": cells["std_pct"]})  # fmt: skip
            paper[f"{label} (paper)"].attrs.update(g.attrs)
    return paper


def size_panels(runs: pd.DataFrame, size: str) -> list[tuple[str, str]]:
    """(protocol, dataset) of each figure of accuracy vs `size` (`SIZES`): where compressed models (pruned or sized)
    have it; for bytes, the base variant (`replicas.COMPRESSION_SETTINGS` aside)."""
    sel = runs[runs["role"].isin(["pruned", "sized"]) & runs[size].notna()]
    variant = "base" if size == "bytes" else "protocol"  # every combination in one figure of bytes (ondisk.CELL)
    return sorted(set(zip(sel[variant], sel["dataset"])))


def size_curves(runs: pd.DataFrame, size: str, dataset: str, protocol: str) -> tuple[dict, str]:
    """Accuracy vs `size` (`SIZES`): every compressed method and model that has it on `dataset`, the dense MLPs a
    curve per regularizer (`dense_curves`)."""
    sel = runs[(runs["dataset"] == dataset) & runs["role"].isin(["pruned", "sized"]) & runs[size].notna()]
    sel = sel[(sel["role"] == "sized") | (sel["method"] != "none")]
    models = sorted(set(zip(sel["method"], sel["model"])))
    return accuracy_curves(runs, dataset, models, protocol, size)


def plot(curves: dict, paper: dict, xlabel: str, heading: str, looks: Styles, extra=None):
    """A figure of `curves` and the `paper`'s cells (see `accuracy_curves`, `paper_curves`): ours as lines in the
    colour and marker of their method or family (or combination, `bytes_curves`) and the line style of their hidden
    size (or network), with error bars of one std; the paper's as hollow markers in the same colour with theirs.
    Each artist is labelled by its curve. `extra(ax)` draws more and returns its legend entries."""
    fig, ax = canvas()
    for label, g in curves.items():
        combination = g.attrs.get("combination")
        colour, marker = looks.combination_mark(combination) if combination else looks.marks[g.attrs["style"]]
        if g.attrs["style"] == "convnet":
            ax.plot(g["p"], g["m"], color=colour, marker=marker, ms=4, ls=looks.fronts[g.attrs["variant"]], label=label)
        else:
            line = looks.nets.get(g.attrs["net"], "-") if "net" in g.attrs else looks.lines.get(g.attrs.get("hidden"), "-")
            ax.errorbar(g["p"], g["m"], yerr=g["s"].fillna(0), color=colour, marker=marker, capsize=2, ls=line,
                        ms=9 if marker.startswith("$") else 4, label=label)  # fmt: skip
    for label, g in paper.items():
        colour, marker = looks.marks[g.attrs["style"]]
        ax.errorbar(g["p"], g["m"], yerr=g["s"], color=colour, marker=marker, ms=6, mfc="white", ls="none",
                    capsize=3, elinewidth=0.8, zorder=3, label=label)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    fig.suptitle(title(heading), fontsize=9)
    handles = looks.legend([g.attrs for g in curves.values()], bool(paper)) + (extra(ax) if extra else [])
    legend_below(fig, handles)
    ax.grid(True, which="both", alpha=0.3)
    log_x(ax)
    return fig


def protocol_title(runs: pd.DataFrame, protocol: str) -> str:
    """`protocol paper_trigger_lag=1 (pruning.timing.trigger_lag=1)`: a variant's label with what sets it apart."""
    settings = variant_data(runs, protocol)["settings"]
    return f"protocol {protocol}" + (f" ({settings})" if settings else "")


def figure_plot(runs: pd.DataFrame, number: int, protocol: str, reference: pd.DataFrame, looks: Styles):
    """Figure `number` of `protocol` (see `plot`), with the paper's cells on Figures 2-5; None where the variant has
    no runs of its own there."""
    curves, data = figure_curves(runs, number, protocol)
    if not own(curves):
        return None
    paper = paper_curves(reference, number, curves) if FIGURES[number][1] == "pruned" else {}
    heading = f"Figure {number}: {FIGURES[number][0]}, {protocol_title(runs, protocol)}\n{data}"
    return plot(curves, paper, "parameters (weights kept + biases)", heading, looks)


def figure(runs: pd.DataFrame, number: int, protocol: str, out: Path, reference: pd.DataFrame | None = None,
           looks: Styles | None = None) -> Path | None:  # fmt: skip
    """Figure `number` of `protocol` as `fig<number>_<protocol>.png` / `.pdf` (`reference`: the paper's tables, by
    default its file; `looks`: the report's styles, by default those of `runs`); None, and no file, where the
    variant has no runs of its own there."""
    reference = pd.read_csv(REFERENCE) if reference is None else reference
    fig = figure_plot(runs, number, protocol, reference, looks or styles(runs))
    return None if fig is None else save(fig, out / f"fig{number}_{protocol}")


def size_plot(runs: pd.DataFrame, size: str, dataset: str, protocol: str, looks: Styles):
    """Accuracy vs `size` on `dataset` (see `plot`): against bytes every method and combination, the Pareto frontier
    over all of them and the published anchors on `dataset` (`ondisk`)."""
    xlabel, name, _ = SIZES[size]
    heading = f"Accuracy vs {name}: {dataset}, {protocol_title(runs, protocol)}"
    if size != "bytes":
        curves, data = size_curves(runs, size, dataset, protocol)
        return plot(curves, {}, xlabel, f"{heading}\n{data}", looks)
    curves, data = bytes_curves(runs, dataset, protocol)
    front = ondisk.frontier(ondisk.byte_cells(runs))
    front = front[(front["protocol"] == protocol) & (front["dataset"] == dataset)]
    extra = frontier_and_anchors(front, ondisk.ANCHORS[ondisk.ANCHORS["dataset"] == dataset])
    return plot(curves, {}, xlabel, f"{heading}\n{data}", looks, extra)


def size_figure(runs: pd.DataFrame, size: str, dataset: str, protocol: str, out: Path,
                looks: Styles | None = None) -> Path:  # fmt: skip
    """Accuracy vs `size` on `dataset` (`size_plot`), as `<size>_<dataset>_<protocol>.png` / `.pdf`."""
    return save(size_plot(runs, size, dataset, protocol, looks or styles(runs)), out / f"{size}_{dataset}_{protocol}")


def histogram_figure(runs: pd.DataFrame, out: Path, hidden: int = 50, ratio: float = 0.04) -> Path | None:
    """Figure 6: the last saved weight histogram of the first seed of MagL1 and of MagL2 (hidden 50, ratio 0.04, on
    MNIST as in the paper), one per protocol variant: each method in its colour, each variant in a line style."""
    looks = styles(runs)
    fig, ax = canvas(4.6)
    drawn = []
    runs = runs[(runs["hidden"] == hidden) & (runs["ratio"] == ratio) & (runs["dataset"] == "mnist")]
    runs = runs[runs["method"].isin(["magl1", "magl2"])]
    lines = dict(zip(sorted(set(runs["protocol"])), cycle(LINES)))
    for (method, protocol), sel in runs.groupby(["method", "protocol"]):
        for _, r in sel.sort_values("seed").iterrows():
            files = sorted(Path(r["run_dir"]).glob("histograms/epoch*.npz"), key=lambda p: int(p.stem[5:]))
            if not files:
                continue
            with np.load(files[-1]) as h:
                names, name = list(h["replicas"]), f"seed{r['seed']}_ratio{ratio:g}"
                i = names.index(f"{r['dataset']}_{name}" if f"{r['dataset']}_{name}" in names else name)  # older runs: no dataset
                counts, edges = h["counts"][i], h["edges"][i]
            ax.stairs(counts / counts.sum(), edges, color=looks.marks[method][0], ls=lines[protocol],
                      label=f"{method}, {protocol} (seed {r['seed']}, after {files[-1].stem[5:]} epochs)")  # fmt: skip
            drawn.append(r["data"])
            break
    if not drawn:
        pyplot().close(fig)
        return None
    ax.set_xlabel("weight value (kept weights)")
    ax.set_ylabel("fraction of weights")
    fig.suptitle(title(f"Figure 6: {hidden} hidden units, ratio {ratio:g}, MNIST; {'; '.join(sorted(set(drawn)))}"),
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return save(fig, out / "fig6")


def write_figures(runs: pd.DataFrame, reference: pd.DataFrame, out: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Every figure with runs of its own to draw, as (the page's heading it goes under, its PNG), in one set of
    styles; and a line per figure not drawn saying why (a placeholder or a copy of another variant's ConvNet front
    would say nothing)."""
    looks, drawn, protocols = styles(runs), [], compressed_protocols(runs)
    without = {number: [] for number in FIGURES}
    for protocol in protocols:
        for number in FIGURES:
            png = figure(runs, number, protocol, out, reference, looks)
            drawn += [(f"protocol {protocol}", png)] if png else []
            without[number] += [] if png else [protocol]
    missing = [f"Figure {number} ({ROLES[role]} on {dataset}): no runs of its own"
               + (f" under protocol {', '.join(without[number])}" if without[number] else "")
               for number, (dataset, role) in FIGURES.items() if without[number] or not protocols]  # fmt: skip
    for size, (_, name, why) in SIZES.items():
        panels = size_panels(runs, size)
        drawn += [(f"protocol {protocol}", size_figure(runs, size, dataset, protocol, out, looks))
                  for protocol, dataset in panels]  # fmt: skip
        missing += [] if panels else [f"Accuracy vs {name}: {why}"]
    fig6 = histogram_figure(runs, out)
    drawn += [("Figure 6", fig6)] if fig6 else []
    missing += [] if fig6 else [f"Figure 6: {FIG6}"]
    return drawn, missing
