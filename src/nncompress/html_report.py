"""`reports/index.html`: the whole report as one self-contained page (figures inlined), readable offline.

Tables 1-6 with the paper's numbers beside ours and the differences coloured (and ours alone for the pruning methods
the paper did not test), the figures, how closely ours follow the paper's (cells within its tolerance, the order
of methods), the claims with their verdicts, and where the numbers come from: commit,
protocol variants and their settings, data, dates, replicas.
"""
import base64
import subprocess
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import pandas as pd

from . import claims
from .report import (ABLATION_NOTE, AT_CHANCE_NOTE, DATASETS, ORDER_NOTE, ablation, cell_stats, fmt, method_order, method_tables,
                     order_counts, table, title, tolerance_totals, variant_data, variants, within_tolerance)

CLOSE = 1.0  # points: a difference to the paper within this is coloured as agreeing

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td.text { text-align: left; }
.close { background: #d8f0d8; } .far { background: #f6d0d0; } .none { color: #999; }
.fails { background: #f6d0d0; } .holds { background: #d8f0d8; } .untested { color: #777; }
img { max-width: 48%; margin: 0.5%; border: 1px solid #ddd; } .note { color: #555; }
"""


def commit() -> str:
    """The checkout's commit (with `+changes` when the work tree differs from it), or `unknown` outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.strip() + (" +changes" if dirty.strip() else "")


def html_table(frame: pd.DataFrame, classes: pd.DataFrame | None = None) -> str:
    """`frame` as an HTML table, text escaped; `classes` (same shape) gives each cell a CSS class."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i in range(len(frame)):
        cells = []
        for j, value in enumerate(frame.iloc[i]):
            css = classes.iat[i, j] if classes is not None else ("text" if isinstance(value, str) else "")
            cells.append(f'<td class="{css}">{escape(str(value))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def paper_table(t: pd.DataFrame, datasets: list[str], paper: bool) -> str:
    """One table (long form, see `report.table`) laid out as the paper's: with `paper`, the paper's cells beside ours
    and Δ coloured by agreement; else ours alone (a method the paper did not test, see `report.method_tables`)."""
    values, classes = [], []
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
            css += ["" if pd.notna(diff) else "none", "", "none" if pd.isna(diff) else "close" if abs(diff) <= CLOSE else "far"]
        values.append(row)
        classes.append(css)
    parts = ("ours", "paper", "Δ") if paper else ("ours",)
    columns = ["edges removed"] + [f"{d} {part}" for d in datasets for part in parts]
    return html_table(pd.DataFrame(values, columns=columns), pd.DataFrame(classes, columns=columns))


def table_section(t: pd.DataFrame, number: int | None, variant: dict) -> list[str]:
    """Paper table `number`, or with None a method's table (see `paper_table`), titled, on the datasets with runs."""
    datasets = [d for d in DATASETS if d in set(t.dropna(subset=["ours_mean"])["dataset"])]
    data = "; ".join(f"{d}: {variant['data'].get(d, 'no runs')}" for d in datasets)
    return [f"<h3>{escape(title(t, number))}</h3>",
            f'<p class="note">Data: {escape(data)} (datasets without runs left out).</p>',
            paper_table(t, datasets, number is not None)]  # fmt: skip


def image(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return f'<img alt="{escape(png.stem)}" src="data:image/png;base64,{data}">'


def store_dates(stores) -> str:
    """The span of the stores' replica files' modification dates (a fresh clone's: its checkout's)."""
    times = [p.stat().st_mtime for store in stores for p in Path(store).glob("*.json")]
    if not times:
        return "no replicas stored"
    day = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
    return f"{day(min(times))} to {day(max(times))}"


def write_html(runs: pd.DataFrame, out: Path, reference: pd.DataFrame, figures: list[Path], stores) -> Path:
    """Write `out/index.html`, read from the results `stores`; `figures` are the PNGs to inline."""
    stats, body = cell_stats(runs), []
    protocols = sorted(set(runs.loc[runs["model"] != "convnet", "protocol"]))
    body += ["<h1>Baktash, Natale &amp; Viennot (2019) re-run: our numbers beside the paper's</h1>",
             f'<p class="note">Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from the results '
             f"store{'s' * (len(stores) > 1)} {', '.join(f'<code>{escape(str(s))}</code>' for s in stores)}: "
             f"{len(runs)} replicas, files dated {store_dates(stores)}; code at commit "
             f"<code>{escape(commit())}</code>.</p>"]  # fmt: skip
    body += ["<h2>Provenance: what was read</h2>",
             '<p class="note">Replicas are pooled over seeds only within one protocol variant (settings as shown: '
             "options that differ between its runs or from <code>conf/protocol/&lt;name&gt;.yaml</code>) and one "
             "dataset's data.</p>",
             html_table(variants(runs)) if len(runs) else "<p>No replicas stored yet.</p>"]  # fmt: skip
    options = [c for c in runs.columns if c.startswith(("protocol.", "pruning.", "dataset."))]
    if len(runs):
        shown = runs[["protocol", "dataset", *options]].astype(object)  # a bool option can take None too
        prunes = runs.filter(regex=r"^method\.saliency").notna().any(axis=1)  # pruning options apply only then
        shown.loc[~prunes, [c for c in options if c.startswith("pruning.")]] = None
        values = lambda s: ", ".join(sorted({str(v) for v in s.dropna()})) or None  # noqa: E731  (all, not a first)
        every = shown.groupby(["protocol", "dataset"])[options].agg(values).reset_index().dropna(axis=1, how="all")
        body.append(f"<details><summary>Every option of each variant</summary>{html_table(every.fillna('—'))}</details>")
    table_claims = claims.comparisons(runs)
    verdicts = claims.verdicts(table_claims, protocols)
    css = verdicts.map(lambda v: "text")
    css["verdict"] = verdicts["verdict"].map({"fails": "fails", "holds": "holds"}).fillna("untested")
    body += ["<h2>The paper's claims</h2>",
             f'<p class="note">Paired t-tests over seeds within a cell, Welch t-tests against ConvNets, Holm-adjusted '
             f"per claim and protocol, {claims.ALPHA:.0%} level; a cell with fewer than two seeds on a side is not "
             "tested. <code>method &gt;= paper method</code>: a pruning method the paper did not test against each of "
             "the paper's, in every cell they share.</p>", html_table(verdicts, css)]  # fmt: skip
    if not table_claims.empty:
        shown = table_claims.round(3).fillna("—")
        body += [f"<details><summary>Every comparison ({len(shown)})</summary>{html_table(shown)}</details>"]
    counts, order = within_tolerance(runs, reference), method_order(runs, reference)
    if not counts.empty:
        body += ["<h2>Fidelity</h2>", '<p class="note">Cells within max(1 point, 2 × the paper\'s std) of the paper, '
                 "summed over Tables 1-6 (per table in <code>fidelity.md</code>); 0 %-removed cells also within "
                 "±0.5.</p>", html_table(tolerance_totals(counts))]  # fmt: skip
        readings = ablation(runs, reference)
        if not readings.empty:
            body += [f'<p class="note">{escape(ABLATION_NOTE)}</p>', html_table(readings.round(2))]
    if not order.empty:
        body += [f'<p class="note">{escape(ORDER_NOTE)}</p>', html_table(order_counts(order))]
    for protocol in protocols:
        variant = variant_data(runs, protocol)
        body.append(f"<h2>Tables, protocol <code>{escape(protocol)}</code></h2>")
        if variant["settings"]:
            body.append(f'<p class="note">Settings: {escape(variant["settings"])}</p>')
        body.append(f'<p class="note">Test accuracy (%), mean ± sample std over n seeds; paper: 5 runs. Δ = ours − '
                    f'paper, <span class="close">within {CLOSE:g} point</span> or <span class="far">beyond</span>.'
                    + (f" {AT_CHANCE_NOTE}" if stats.loc[stats["protocol"] == protocol, "at_chance"].any() else "")
                    + "</p>")  # fmt: skip
        empty = []
        for number in sorted(set(reference["table"])):
            t = table(reference, stats, number, protocol)
            if t["ours_mean"].isna().all():
                empty.append(str(number))
                continue
            body += table_section(t, number, variant)
        if empty:
            body.append(f'<p class="note">No runs yet for Table(s) {", ".join(empty)}.</p>')
        for t in method_tables(runs, protocol).values():
            body += table_section(t, None, variant)
    body += ["<h2>Figures</h2>"] + [image(png) for png in figures]
    page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>nncompress report</title>'
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip
    path = out / "index.html"
    path.write_text(page)
    return path
