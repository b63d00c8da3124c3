"""The report in bytes on disk: every method and combination on each network (`replicas.combination` and `net`:
`magl1+k5`, `hashednet+magl1`, `h300-100`) as cells of mean accuracy and mean artefact bytes over seeds, the Pareto
frontier over all of them, the best cell at each byte budget, and other papers' points as anchors.

Only the compressed models and the dense MLPs enter (the ConvNet fronts, drawn beside them, are picked over hundreds
of architectures and stay out); each protocol variant and dataset apart, as everywhere in the report.
"""
import pandas as pd

from ..pareto import pareto_front
from .tables import Table, fmt

KB = 1000  # bytes in the budgets' and anchors' kilobyte (Deep Compression's "27 KB" is 27,000 B)
BUDGETS = tuple(kb * KB for kb in (1, 2, 4, 8, 16, 32))
# Published points on MNIST in bytes: name, dataset, bytes, test accuracy (%), where it is from.
ANCHORS = pd.DataFrame(
    [("Deep Compression", "mnist", 27_000, 98.42,
      "Han, Mao & Dally, ICLR 2016, Table 1: LeNet-300-100 pruned, quantized and Huffman-coded, 1,070 KB to 27 KB"),
     ("pruning alone", "mnist", round(1_070_000 / 12), 98.41,
      "Han et al., NeurIPS 2015: LeNet-300-100 pruned 12x, its 1,070 KB / 12 (weights only, no index counted)")],
    columns=["name", "dataset", "bytes", "acc", "source"],
)  # fmt: skip
CELL = ["base", "dataset", "combination", "net", "ratio"]  # replicas differing only in their seed; `base`: the protocol
# variant without what compresses (replicas.COMPRESSION_SETTINGS), so that combinations meet in one view
SIDES = {"best": "best", "runner_up": "runner-up"}  # a budget row's two cells (column prefix: page head)
FIELDS = ("combination", "net", "ratio", "acc", "std", "n", "bytes")


def byte_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of the compressed models and dense MLPs with artefacts (`CELL`): mean test accuracy (%),
    its sample std, seeds `n`, mean artefact `bytes`; `protocol` is the cell's base variant."""
    sel = runs[runs["role"].isin(["pruned", "sized"]) & runs["bytes"].notna()]
    grouped = sel.groupby(CELL)
    cells = grouped.agg(acc=("acc", "mean"), std=("acc", "std"), n=("acc", "count"), bytes=("bytes", "mean"))
    return cells.reset_index().rename(columns={"base": "protocol"})  # the views below read it as their variant


def frontier(cells: pd.DataFrame) -> pd.DataFrame:
    """Per protocol variant and dataset, the cells (`byte_cells`) no other beats: at least as accurate in no more
    bytes, and better in one (`pareto.pareto_front`), fewest bytes first."""
    fronts = [pareto_front(g, accuracy="acc", size="bytes") for _, g in cells.groupby(["protocol", "dataset"])]
    return pd.concat(fronts, ignore_index=True) if fronts else cells.iloc[:0]


def ranked(cells: pd.DataFrame) -> pd.DataFrame:
    """`cells` best first: highest mean accuracy, then fewest bytes (then by name, so a tie reads the same twice)."""
    return cells.sort_values(["acc", "bytes", "combination", "net", "ratio"], ascending=[False, True, True, True, True])


def best_at_budgets(cells: pd.DataFrame, budgets=BUDGETS) -> pd.DataFrame:
    """Per dataset, protocol variant and budget (bytes): the cell of highest mean accuracy whose mean bytes fit
    (`best_*`: `FIELDS`), and the runner-up, the best cell of another combination (`runner_up_*`); NaN where none
    fits."""
    rows = []
    for (dataset, protocol), g in cells.groupby(["dataset", "protocol"]):
        order = ranked(g)
        for budget in budgets:
            fits = order[order["bytes"] <= budget]
            best = fits.head(1)
            second = fits[~fits["combination"].isin(best["combination"])].head(1)
            row = {"dataset": dataset, "protocol": protocol, "budget": budget}
            for side, cell in (("best", best), ("runner_up", second)):
                row |= {f"{side}_{k}": cell[k].iat[0] if len(cell) else float("nan") for k in FIELDS}
            rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "protocol", "budget", *(f"{s}_{k}" for s in SIDES for k in FIELDS)])


def anchored(cells: pd.DataFrame) -> pd.DataFrame:
    """Per anchor (`ANCHORS`) and protocol variant with cells on its dataset: our best cell within the anchor's
    bytes (`FIELDS`, NaN where none fits) and its accuracy minus the anchor's (`diff`, points)."""
    rows = []
    for anchor in ANCHORS.itertuples():
        for protocol, g in cells[cells["dataset"] == anchor.dataset].groupby("protocol"):
            best = ranked(g[g["bytes"] <= anchor.bytes]).head(1)
            ours = {k: best[k].iat[0] if len(best) else float("nan") for k in FIELDS}
            rows.append({"anchor": anchor.name, "anchor_bytes": anchor.bytes, "anchor_acc": anchor.acc,
                         "dataset": anchor.dataset, "protocol": protocol, **ours, "diff": ours["acc"] - anchor.acc})  # fmt: skip
    return pd.DataFrame(rows)


def cell_name(row: pd.Series, side: str = "") -> str:
    """`magl1+k5 h100, ratio 0.01`: a cell as a table names it ("—" for none)."""
    combination, net, ratio = (row[f"{side}{k}"] for k in ("combination", "net", "ratio"))
    if pd.isna(combination):
        return "—"
    return " ".join(filter(None, [combination, net])) + f", ratio {ratio:g}"


def shown_bytes(value) -> str:
    return "—" if pd.isna(value) else f"{value:,.0f}"


def aligned(cells: pd.DataFrame) -> Table:
    """`cells` (all texts) as a `Table` whose numbers stand right-aligned on the page, names left."""
    css = ["" if part in ("accuracy (%)", "bytes", "Δ") else "text" for _, part in cells.columns]
    return Table(cells, pd.DataFrame([css] * len(cells), columns=cells.columns))


def budget_table(best: pd.DataFrame) -> Table:
    """One dataset and protocol's rows of `best_at_budgets` laid out: per budget, the best cell and the runner-up,
    each with its accuracy (mean ± std, n seeds) and bytes."""
    rows = [[f"{r['budget'] / KB:g} KB"]
            + [text for side in SIDES for text in (cell_name(r, f"{side}_"),
               fmt(r[f"{side}_acc"], r[f"{side}_std"], r[f"{side}_n"]), shown_bytes(r[f"{side}_bytes"]))]
            for _, r in best.iterrows()]  # fmt: skip
    columns = [("", "budget")] + [(head, part) for head in SIDES.values() for part in ("cell", "accuracy (%)", "bytes")]
    return aligned(pd.DataFrame(rows, columns=pd.MultiIndex.from_tuples(columns)))


def anchor_table(anchors: pd.DataFrame) -> Table:
    """`anchored` laid out: each anchor, and our best within its bytes per protocol variant with the difference."""
    rows = [[r["anchor"], f"{r['anchor_acc']:.2f}", shown_bytes(r["anchor_bytes"]), r["protocol"], cell_name(r),
             fmt(r["acc"], r["std"], r["n"]), shown_bytes(r["bytes"]), "—" if pd.isna(r["diff"]) else f"{r['diff']:+.2f}"]
            for _, r in anchors.iterrows()]  # fmt: skip
    columns = [("anchor", "point"), ("anchor", "accuracy (%)"), ("anchor", "bytes"), ("ours", "protocol"),
               ("ours", "best within its bytes"), ("ours", "accuracy (%)"), ("ours", "bytes"), ("", "Δ")]  # fmt: skip
    return aligned(pd.DataFrame(rows, columns=pd.MultiIndex.from_tuples(columns)))


BUDGETS_NOTE = ("Per dataset and protocol variant, at each budget, the cell (method or combination, network, ratio) of "
                "highest mean test accuracy over seeds among those whose mean artefact size on disk fits, and the "
                "runner-up: the best cell of another method or combination. 1 KB = 1,000 bytes; the artefact is the "
                "whole file (export=true). Compressed models and dense MLPs only (not the ConvNet fronts).")  # fmt: skip
ANCHORS_NOTE = "Published points in bytes, beside our best cell within each one's bytes (Δ = ours − the anchor): " + (
    "; ".join(f"{a.name}: {a.source}" for a in ANCHORS.itertuples()) + ".")


def sections(runs: pd.DataFrame) -> tuple[list[dict], Table | None]:
    """The best-at-each-budget tables, one per dataset and protocol variant with artefacts (`title`, `table`), and
    the anchors' table (None where no variant has cells on an anchor's dataset); ([], None) where no replica has
    bytes."""
    cells = byte_cells(runs)
    if cells.empty:
        return [], None
    budgets = [{"title": f"{dataset}, protocol {protocol}", "table": budget_table(rows)}
               for (dataset, protocol), rows in best_at_budgets(cells).groupby(["dataset", "protocol"])]  # fmt: skip
    anchors = anchored(cells)
    return budgets, anchor_table(anchors) if len(anchors) else None


def markdown(runs: pd.DataFrame) -> list[str]:
    """summary.md's section: the best at each byte budget, and the anchors beside ours."""
    lines = ["", "## Best at each byte budget", "", BUDGETS_NOTE, ""]
    budgets, anchors = sections(runs)
    if not budgets:
        return lines + ["Not drawn: no stored replica has an artefact (train with `export=true`)."]
    for section in budgets:
        lines += [f"### {section['title']}", "", section["table"].markdown(), ""]
    if anchors is not None:
        lines += ["### Anchors", "", ANCHORS_NOTE, "", anchors.markdown(), ""]
    return lines[:-1]
