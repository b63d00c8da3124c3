"""`reports/index.html`: the whole report as one self-contained page (figures inlined), readable offline.

Tables 1-6 with the paper's numbers beside ours and the differences coloured (and ours alone for the pruning methods
the paper did not test), each row with what its replicas cost (parameters, FLOPs, compression, speedup), the
figures, how closely ours follow the paper's (cells within its tolerance, the order of methods), the claims with their verdicts, and where the numbers come from: commit, protocol variants and their
settings, data, dates, replicas. The layout is the template `page.html`.
"""
import base64
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from ..resources import commit
from . import claims
from .fidelity import (ABLATION_NOTE, ORDER_NOTE, ablation, method_order, order_counts, tolerance_totals,
                       within_tolerance)
from .markup import HTML
from .paper import in_order
from .stats import ALPHA, cell_stats, compressed_protocols, variant_data, variants
from .tables import AT_CHANCE_NOTE, CLOSE, SIZES_NOTE, Table, data_line, layout, method_tables, table, title

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td.text { text-align: left; }
.close { background: #d8f0d8; } .far { background: #f6d0d0; } .none { color: #999; }
.fails { background: #f6d0d0; } .holds { background: #d8f0d8; } .open { background: #f4f0d8; } .untested { color: #777; }
img { max-width: 48%; margin: 0.5%; border: 1px solid #ddd; } .note { color: #555; }
"""


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


def write_html(runs: pd.DataFrame, out: Path, reference: pd.DataFrame, figures: list[tuple[str, Path]], stores) -> Path:
    """Write `out/index.html`, read from the results `stores`; `figures` are the PNGs to inline, each under its
    heading (`figures.write_figures`). A section of
    the page whose table would be empty (None here) is left out."""
    stats, comparisons = cell_stats(runs), claims.comparisons(runs)
    verdicts = claims.verdicts(comparisons, compressed_protocols(runs))
    css = verdicts.map(lambda v: "text")
    css["verdict"] = verdicts["verdict"].map({"fails": "fails", "holds": "holds", "not contradicted": "open"}).fillna("untested")
    tolerance, readings = within_tolerance(runs, reference), ablation(runs, reference)
    order = method_order(runs, reference)
    page = HTML.get_template("page.html").render(
        style=Markup(STYLE), generated=datetime.now(timezone.utc), stores=stores, replicas=len(runs),
        dates=store_dates(stores), commit=commit(changes=True), alpha=ALPHA, close=CLOSE, at_chance_note=AT_CHANCE_NOTE,
        sizes_note=SIZES_NOTE, ablation_note=ABLATION_NOTE, order_note=ORDER_NOTE,
        variants=Table(variants(runs)) if len(runs) else None,
        options=Table(options(runs).fillna("—")) if len(runs) else None,
        verdicts=Table(verdicts, css),
        comparisons=None if comparisons.empty else Table(comparisons.round(3).fillna("—")),
        tolerance=None if tolerance.empty else Table(tolerance_totals(tolerance)),
        ablation=None if readings.empty else Table(readings.round(2)),
        order=None if order.empty else Table(order_counts(order)),
        protocols=[protocol_tables(runs, reference, stats, p) for p in compressed_protocols(runs)],
        images=[image(png) for _, png in figures],
    )  # fmt: skip
    path = out / "index.html"
    path.write_text(page)
    return path
