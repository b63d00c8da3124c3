"""Tables 1-6 as the paper lays them out, ours beside its numbers, and the tables of pruning methods it did not test.

A table is kept in long form (one row per cell, see `table`: written as CSV) and laid out once, as a `Table` of
cell texts with a CSS class per cell, which renders as Markdown (`tableN_<protocol>.md`) and as HTML (the page).
"""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import DataRow, TableFormat, tabulate

from .markup import HTML
from .paper import in_order, other_methods
from .stats import cell_stats, variant_data

CLOSE = 1.0  # points: a difference to the paper within this is coloured as agreeing
# What a row's replicas cost (stats.SIZES), as a table shows it: its column's head, its format.
SIZE_COLUMNS = {"parameters": ("parameters", "{:,.0f}"), "flops": ("FLOPs", "{:,.0f}"),
                "compression": ("compression", "{:.3g}×"), "speedup": ("speedup", "{:.3g}×")}  # fmt: skip
SIZES_NOTE = ("Parameters (weights kept + biases), FLOPs (multiply-adds of one example's forward pass, non-zero "
              "weights only), compression (the unpruned network's parameters / the row's) and speedup (its FLOPs / "
              "the row's): means over the row's cells, \"—\" where no record tells them.")  # fmt: skip
AT_CHANCE_NOTE = ("k at chance: replicas that learned nothing (training accuracy within 1 point of always answering "
                  "the commonest class), kept in the mean.")  # fmt: skip
# GitHub's pipe table with `| --- |` rules and each cell as written, not padded to its column's width: the tableN
# files as they have always been, where a wider cell changes no other line.
PIPE = TableFormat(lineabove=None, linebelowheader=lambda widths, _: "|" + " --- |" * len(widths),
                   linebetweenrows=None, linebelow=None, headerrow=DataRow("|", "|", "|"),
                   datarow=DataRow("|", "|", "|"), padding=1, with_header_hide=None)  # fmt: skip
CELLS = HTML.from_string("""
    <div class="scroll"><table>
      <tr>{% for head in heads %}<th>{{ head }}</th>{% endfor %}</tr>
      {% for row in rows %}
        <tr>{% for value, css in row %}<td class="{{ css }}">{{ value }}</td>{% endfor %}</tr>
      {% endfor %}
    </table></div>
""")  # in a box of its own that scrolls sideways: a wide table never widens the page


@dataclass(frozen=True)
class Table:
    """Cells under their column heads, and the CSS class of each cell on the page (by default `text`, left-aligned,
    for a text cell and none for a number). A two-level head (group, name) reads `group name`: on the page over each
    column of its group, in Markdown (one header row) over the first only, the others reading `name`."""

    cells: pd.DataFrame
    classes: pd.DataFrame | None = None

    def heads(self, every: bool) -> list[str]:
        if not isinstance(self.cells.columns, pd.MultiIndex):
            return list(self.cells.columns)
        heads, last = [], None
        for group, name in self.cells.columns:
            heads.append(f"{group} {name}" if group and (every or group != last) else name)
            last = group
        return heads

    def markdown(self) -> str:
        return tabulate(self.cells.to_numpy().tolist(), self.heads(every=False), tablefmt=PIPE, disable_numparse=True,
                        stralign=None)  # fmt: skip

    def __html__(self) -> str:
        """The table in HTML, each value escaped (markupsafe's protocol: a template shows it as it is)."""
        classes = self.classes
        if classes is None:
            classes = self.cells.map(lambda value: "text" if isinstance(value, str) else "")
        rows = zip(self.cells.to_numpy(dtype=object), classes.to_numpy(dtype=object))
        return CELLS.render(heads=self.heads(every=True), rows=[zip(*row) for row in rows])


def table(reference: pd.DataFrame, stats: pd.DataFrame, number: int, protocol: str) -> pd.DataFrame:
    """Long form of one paper table for one protocol: the paper's cells joined with ours."""
    ref = reference[reference["table"] == number]
    ours = stats[stats["protocol"] == protocol].drop(columns=["protocol", "net"])  # the paper's nets: one layer
    out = ref.merge(ours, how="left", on=["method", "hidden", "dataset", "ratio"])
    out["diff"] = out["mean"] - out["mean_pct"]
    return out.rename(columns={"mean_pct": "paper_mean", "std_pct": "paper_std", "mean": "ours_mean", "std": "ours_std"})


def method_tables(runs: pd.DataFrame, protocol: str) -> dict[tuple, pd.DataFrame]:
    """Per pruning method and net (`replicas.net`) with runs under `protocol` that no table of the paper holds (a
    method it did not test, or a net of several hidden layers), keyed by (method, net): the long form of a table
    shaped like the paper's (see `table`), our cells only, "—" where a dataset has no run at a ratio."""
    stats = cell_stats(runs)
    unseen = stats["method"].isin(other_methods(runs)) | (stats["hidden"].isna() & (stats["method"] != "none"))
    stats = stats[(stats["protocol"] == protocol) & unseen]
    tables = {}
    for (method, net), ours in stats.groupby(["method", "net"]):
        grid = pd.MultiIndex.from_product([sorted(set(ours["ratio"])), sorted(set(ours["dataset"]))],
                                          names=["ratio", "dataset"])  # fmt: skip
        t = ours.drop(columns=["method", "net", "hidden", "protocol"]).set_index(grid.names).reindex(grid).reset_index()
        t = t.rename(columns={"mean": "ours_mean", "std": "ours_std"}).assign(method=method, net=net)
        tables[method, net] = t.assign(edges_removed_pct=(100 * (1 - t["ratio"])).round(6))
    return tables


def title(t: pd.DataFrame, number: int | None = None) -> str:
    """A table's title: the paper's number (None: a method the paper did not test), method and hidden units."""
    units = f"{t['hidden'].iloc[0]:g}" if "hidden" in t else t["net"].iloc[0].removeprefix("h")  # 300-100: deep
    name = f"{t['method'].iloc[0]}, {units} hidden units"
    return f"Table {number}: {name}" if number is not None else f"{name} (not in the paper)"


def data_line(variant: dict, datasets: list[str]) -> str:
    """What a table's `datasets` are, for a protocol variant (see `stats.variant_data`)."""
    return "; ".join(f"{d}: {variant['data'].get(d, 'no runs')}" for d in datasets)


def fmt(mean, std, n=None, at_chance=0) -> str:
    """`96.00 ± 1.00 (n=3)`, with `, 1 at chance` when replicas of the cell learned nothing."""
    if pd.isna(mean):
        return "—"
    spread = "" if pd.isna(std) else f" ± {std:.2f}"
    stuck = f", {int(at_chance)} at chance" if pd.notna(at_chance) and at_chance else ""
    return f"{mean:.2f}{spread}" + ("" if n is None or pd.isna(n) else f" (n={int(n)}{stuck})")


def size_cells(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """A table row's `SIZE_COLUMNS`, the means over its cells with runs, as texts and their CSS classes."""
    means = [rows[size].mean() for size in SIZE_COLUMNS]
    return ([form.format(m) if pd.notna(m) else "—" for m, (_, form) in zip(means, SIZE_COLUMNS.values())],
            ["" if pd.notna(m) else "none" for m in means])  # fmt: skip


def layout(t: pd.DataFrame, datasets: list[str], paper: bool) -> Table:
    """One table (long form) laid out as the paper's, a row per share of edges removed: on each of `datasets` our
    cell, and with `paper` the paper's and Δ, classed by agreement (else ours alone: a method the paper did not
    test, see `method_tables`); then what the row's replicas cost (`size_cells`)."""
    cells, classes = [], []
    for removed, rows in t.groupby("edges_removed_pct", sort=True):
        row, css = [f"{removed:g} %"], ["text"]
        for d in datasets:
            r = rows[rows["dataset"] == d].iloc[0]
            row.append(fmt(r["ours_mean"], r["ours_std"], r["n"], r["at_chance"]))
            if not paper:
                css.append("" if pd.notna(r["ours_mean"]) else "none")
                continue
            diff = r["diff"]
            row += [fmt(r["paper_mean"], r["paper_std"]), "—" if pd.isna(diff) else f"{diff:+.2f}"]
            agreement = "none" if pd.isna(diff) else "close" if abs(diff) <= CLOSE else "far"
            css += ["" if pd.notna(diff) else "none", "", agreement]
        texts, size_css = size_cells(rows)
        cells.append(row + texts)
        classes.append(css + size_css)
    parts = ("ours", "paper", "Δ") if paper else ("ours",)
    columns = pd.MultiIndex.from_tuples([("", "edges removed")] + [(d, part) for d in datasets for part in parts]
                                        + [("", head) for head, _ in SIZE_COLUMNS.values()])  # fmt: skip
    return Table(pd.DataFrame(cells, columns=columns), pd.DataFrame(classes, columns=columns))


def markdown(t: pd.DataFrame, number: int | None, protocol: str, variant: dict) -> str:
    """Paper table `number` (long form, see `table`) as Markdown, or with number None a method's table without the
    paper's columns (see `method_tables`)."""
    datasets, paper = in_order(t["dataset"]), number is not None
    lines = [
        f"## {title(t, number)}, protocol `{protocol}`",
        "",
        "Test accuracy (%), mean ± sample std over seeds (n = seeds)"
        + ("; paper: 5 runs. Δ = ours − paper. " if paper else ". ")
        + (f"Settings: {variant['settings']}. " if variant["settings"] else "")
        + (AT_CHANCE_NOTE if t["at_chance"].fillna(0).any() else ""),
        "",
        SIZES_NOTE,
        "",
        f"Data: {data_line(variant, datasets)}.",
        "",
        layout(t, datasets, paper).markdown(),
    ]
    return "\n".join(lines) + "\n"


def write_tables(runs: pd.DataFrame, out: Path, reference: pd.DataFrame) -> list[Path]:
    """Every paper table for every protocol with runs (just the paper's numbers if there are none), then the tables
    of the methods the paper did not test."""
    stats = cell_stats(runs)
    written = []
    for protocol in sorted(set(stats["protocol"])) or ["none"]:
        variant = variant_data(runs, protocol)
        tables = [(n, f"table{n}", table(reference, stats, n, protocol)) for n in sorted(set(reference["table"]))]
        tables += [(None, f"table_{m}_{net.removeprefix('h')}", t) for (m, net), t in method_tables(runs, protocol).items()]
        for number, name, t in tables:
            stem = f"{name}_{protocol}"  # a label may hold dots (`paper_lr=1.0`): no Path.with_suffix
            t.to_csv(out / f"{stem}.csv", index=False)
            (out / f"{stem}.md").write_text(markdown(t, number, protocol, variant))
            written.append(out / f"{stem}.md")
    return written
