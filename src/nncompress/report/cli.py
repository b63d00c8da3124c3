"""`make paper-figures`: the paper's tables and figures regenerated from the results store.

    python -m nncompress.report [--results multirun/results] [--out reports]

Safe to rerun: every store is checked before anything is written (a missing, mistyped or empty one is an error), and
the new report replaces the last one in `--out` only once all of it is written (files of your own there stay).
"""
import argparse
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..errors import UserError, exit_on_user_error
from ..replicas import load_results
from .fidelity import write_fidelity
from .figures import FIG6, SIZES, write_figures
from .page import write_html
from .paper import REFERENCE
from .summary import write_summary
from .tables import write_tables


def check_out(out: Path) -> None:
    """`--out` a file is refused in one line before anything is read or written (a store that is not one is the
    store's to refuse: `ResultStore.open`)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")


def write_report(runs: pd.DataFrame, reference: pd.DataFrame, stores, out: Path) -> list:
    """Every file of the report, written into `out`; returns what to print, in order: the files (paths) and notes."""
    lines = write_tables(runs, out, reference)
    figures, missing = write_figures(runs, reference, out)
    lines += [png for _, png in figures]
    if not any(heading == "Figure 6" for heading, _ in figures):
        lines.append(f"fig6: {FIG6}")
    return lines + [write_fidelity(runs, out, reference), write_summary(runs, out, missing),
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
# the new report did not write is removed, so a variant no longer in the store leaves no stale file. The report's
# other files (fidelity.md, summary.md, index.html) are always rewritten.
GENERATED = ("table*.md", "table*.csv", "fig*.png", "fig*.pdf",
             *(f"{size}_*.{kind}" for size in SIZES for kind in ("png", "pdf")))  # fmt: skip


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
    parser = argparse.ArgumentParser(prog="python -m nncompress.report", description=__doc__.splitlines()[0])
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
