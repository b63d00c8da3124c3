"""`reports/index.html`: the whole report as one self-contained page (figures inlined), readable offline.

A table of contents; where the numbers come from (commit, protocol variants and their settings, data, dates,
replicas); the claims tested, one row each with the cells behind it folded; how closely ours follow the paper's
(cells within its tolerance, the order of methods); Tables 1-6 with the paper's numbers beside ours and the
differences coloured (and ours alone for the pruning methods the paper did not test), each row with what its replicas
cost (parameters, FLOPs, compression, speedup); the best at each byte budget with the published anchors (`ondisk`);
the figures. Sections with nothing to show are left out and counted. The layout is the template `page.html`.
"""
import base64
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from ..resources import commit
from . import claims, ondisk
from .fidelity import (ABLATION_NOTE, ORDER_NOTE, ablation, method_order, order_counts, tolerance_totals,
                       within_tolerance)
from .markup import HTML
from .paper import in_order
from .stats import ALPHA, cell_stats, compressed_protocols, variant_data, variants
from .tables import AT_CHANCE_NOTE, CLOSE, SIZES_NOTE, Table, data_line, layout, method_tables, table, title

# The page is never wider than its window: a wide table scrolls in its own box (`.scroll`), an image shrinks to fit.
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #222; }
code { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td.text { text-align: left; }
.close { background: #d8f0d8; } .far { background: #f6d0d0; } .none { color: #999; }
.fails { background: #f6d0d0; } .holds { background: #d8f0d8; } .open { background: #f4f0d8; }
.claims { min-width: 70em; font-size: 13px; }
.claims .row, .claims summary { display: grid; grid-template-columns: 24em 15em 9.5em repeat(5, minmax(5.5em, 1fr)); gap: 0 0.6em;
  padding: 3px 6px; border-bottom: 1px solid #ddd; align-items: center; }
.claims .row { background: #f2f2f2; font-weight: 600; } .claims .n { text-align: right; }
.claims .row > span, .claims summary > span { min-width: 0; overflow-wrap: anywhere; }  /* long variant labels wrap */
.claims summary { cursor: pointer; list-style: none; } .claims summary::-webkit-details-marker { display: none; }
.claims summary > :first-child::before { content: "\\25B8  "; } .claims [open] > summary > :first-child::before { content: "\\25BE  "; }
.claims details > .scroll { margin: 0.3em 0 0.8em 1.5em; }
.verdict { padding: 0 4px; border-radius: 3px; }
nav ol { margin: 0.2em 0; } nav li { margin: 0.15em 0; }
nav ol ol { padding: 0; } nav ol ol li { display: inline; } nav ol ol li:not(:last-child)::after { content: " · "; }
figure { margin: 0 0 1em; } img { max-width: 100%; height: auto; border: 1px solid #ddd; } .note { color: #555; }
"""
VERDICT_CSS = {"fails": "fails", "holds": "holds", "not contradicted": "open"}  # claims.VERDICTS but `not tested`
# A claim row's counts (claims.verdicts' columns), as the page heads them.
COUNTS = {"cells tested": "cells tested", "supporting": "for it", "contradicting": "against it",
          "not tested (n < 2)": "n < 2", "cells with replicas at chance": "at chance"}  # fmt: skip


def store_dates(stores) -> str:
    """The span of the stores' replica files' modification dates (a fresh clone's: its checkout's)."""
    times = [p.stat().st_mtime for store in stores for p in Path(store).glob("*.json")]
    if not times:
        return "no replicas stored"
    day = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
    return f"{day(min(times))} to {day(max(times))}"


def options(runs: pd.DataFrame) -> pd.DataFrame:
    """Per protocol variant and dataset, every value its replicas ran with of each protocol, pruning and data option
    (pruning options only where the method prunes)."""
    names = [c for c in runs.columns if c.startswith(("protocol.", "pruning.", "dataset."))]
    shown = runs[["protocol", "dataset", *names]].astype(object)  # a bool option can take None too
    prunes = runs.filter(regex=r"^method\.saliency").notna().any(axis=1)
    shown.loc[~prunes, [c for c in names if c.startswith("pruning.")]] = None
    values = lambda s: ", ".join(sorted({str(v) for v in s.dropna()})) or None  # noqa: E731  (all, not a first)
    return shown.groupby(["protocol", "dataset"])[names].agg(values).reset_index().dropna(axis=1, how="all")


def section(t: pd.DataFrame, number: int | None, variant: dict) -> dict:
    """Paper table `number`, or with None a method's table (see `tables.layout`), on the datasets with runs."""
    datasets = in_order(t.dropna(subset=["ours_mean"])["dataset"])
    return {"title": title(t, number), "data": data_line(variant, datasets),
            "table": layout(t, datasets, paper=number is not None)}


def protocol_tables(runs: pd.DataFrame, reference: pd.DataFrame, stats: pd.DataFrame, protocol: str) -> dict:
    """The tables of one protocol variant: the paper's with runs, the numbers of those without, the other methods'."""
    variant, paper, empty = variant_data(runs, protocol), [], []
    for number in sorted(set(reference["table"])):
        t = table(reference, stats, number, protocol)
        if t["ours_mean"].isna().all():
            empty.append(str(number))
        else:
            paper.append(section(t, number, variant))
    return {"name": protocol, "settings": variant["settings"], "paper": paper, "empty": empty,
            "at_chance": stats.loc[stats["protocol"] == protocol, "at_chance"].any(),
            "others": [section(t, None, variant) for t in method_tables(runs, protocol).values()]}  # fmt: skip


def image(png: Path) -> dict:
    return {"alt": png.stem, "data": base64.b64encode(png.read_bytes()).decode()}


def claim_rows(verdicts: pd.DataFrame, comparisons: pd.DataFrame) -> list[dict]:
    """One row per claim (and protocol) that was tested: its verdict, the counts of cells behind it, and those
    cells (a `Table`, folded on the page); the untested ones are left out."""
    rows = []
    for _, v in verdicts[verdicts["verdict"] != "not tested"].iterrows():
        cells = comparisons[(comparisons["claim"] == v["claim"]) & (comparisons["protocol"] == v["protocol"])]
        rows.append({"claim": v["claim"], "protocol": v["protocol"], "verdict": v["verdict"],
                     "css": VERDICT_CSS[v["verdict"]], "counts": v[list(COUNTS)].tolist(),
                     "cells": Table(cells.drop(columns=["claim", "protocol"]).round(3).fillna("—"))})  # fmt: skip
    return rows


def anchor(kind: str, i: int, name: str) -> str:
    """A section's id: its kind and place (unique), then its name with what an id should not hold replaced."""
    return f"{kind}-{i}-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def write_html(runs: pd.DataFrame, out: Path, reference: pd.DataFrame, figures: list[tuple[str, Path]], stores) -> Path:
    """Write `out/index.html`, read from the results `stores`; `figures` are the PNGs to inline, each under its
    heading (see `figures.write_figures`). A section with nothing to show is left out, and counted."""
    stats, comparisons = cell_stats(runs), claims.comparisons(runs)
    verdicts = claims.verdicts(comparisons, compressed_protocols(runs))
    rows = claim_rows(verdicts, comparisons)
    tolerance, readings = within_tolerance(runs, reference), ablation(runs, reference)
    order = method_order(runs, reference)
    protocols = [protocol_tables(runs, reference, stats, p) for p in compressed_protocols(runs)]
    groups = {}
    for heading, png in figures:
        groups.setdefault(heading, []).append(image(png))
    hidden = ([] if rows else ["the claims (none tested)"]) + ([] if len(tolerance) or len(order) else ["fidelity"])
    hidden += [f"tables, protocol {p['name']}" for p in protocols if not (p["paper"] or p["others"])]
    budgets, anchors = ondisk.sections(runs)
    hidden += ([] if budgets else ["the best at each byte budget (no artefacts)"]) + ([] if groups else ["figures"])
    protocols = [dict(p, id=anchor("tables", i, p["name"])) for i, p in enumerate(protocols) if p["paper"] or p["others"]]
    settings = {f"protocol {p}": variant_data(runs, p)["settings"] for p in compressed_protocols(runs)}
    groups = [{"title": heading, "id": anchor("figures", i, heading), "images": images, "settings": settings.get(heading)}
              for i, (heading, images) in enumerate(groups.items())]  # fmt: skip
    page = HTML.get_template("page.html").render(
        style=Markup(STYLE), generated=datetime.now(timezone.utc), stores=stores, replicas=len(runs),
        dates=store_dates(stores), commit=commit(changes=True), alpha=ALPHA, close=CLOSE, at_chance_note=AT_CHANCE_NOTE,
        sizes_note=SIZES_NOTE, ablation_note=ABLATION_NOTE, order_note=ORDER_NOTE,
        variants=Table(variants(runs)) if len(runs) else None,
        options=Table(options(runs).fillna("—")) if len(runs) else None,
        claims=rows, untested=int((verdicts["verdict"] == "not tested").sum()), counts=COUNTS,
        tolerance=None if tolerance.empty else Table(tolerance_totals(tolerance)),
        ablation=None if readings.empty else Table(readings.round(2)),
        order=None if order.empty else Table(order_counts(order)),
        protocols=protocols, budgets=budgets, anchors=anchors, budgets_note=ondisk.BUDGETS_NOTE,
        anchors_note=ondisk.ANCHORS_NOTE, figures=groups, hidden=hidden,
    )  # fmt: skip
    path = out / "index.html"
    path.write_text(page)
    return path
