"""A report is safe to rerun: a careless command line never costs the last report, a failure half-way never leaves
half a report, and files of one's own beside it stay."""
import hashlib
import os
from pathlib import Path

import pytest

from nncompress.report import cli
from nncompress.results import ResultStore

from conftest import ROOT, NamedStore, run_python
from test_report import fake_record


def tree(folder):
    """Every file under `folder`, relative path -> SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def left_behind(out):
    """Staging folders of `out` still beside it."""
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}-")]


@pytest.fixture
def store(tmp_path):
    store = NamedStore(tmp_path / "store")
    for seed, acc in enumerate([0.95, 0.97]):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, acc))
    return store.root


@pytest.fixture
def last_report(tmp_path):
    """A previous report (files under the report's own names, one of a variant no longer stored) and a note of the
    user's beside it."""
    out = tmp_path / "reports"
    out.mkdir()
    for name in ("table3_fast.md", "table3_fast-0ld.csv", "fig1_fast.png", "fidelity.md", "summary.md", "index.html"):
        (out / name).write_text(f"last report's {name}")
    (out / "notes.txt").write_text("mine")
    return out


def report(*args):
    """`python -m nncompress.report ARGS` as a user runs it."""
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return run_python("-m", "nncompress.report", *args, env=env, timeout=300)


def assert_refused(proc, says):
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and says in proc.stderr


MISTAKES = [("typo", "no such folder"), ("file", "is a file"), ("empty", "not a results store"),
            ("project", "not a results store"), ("new store", "no stored replica")]  # fmt: skip


@pytest.mark.parametrize("mistake, says", MISTAKES)
def test_a_careless_results_path_is_one_line_and_leaves_the_last_report_intact(tmp_path, store, last_report, mistake, says):
    wrong = {"typo": tmp_path / "stroe", "file": store / next(os.walk(store))[2][0], "empty": tmp_path / "empty",
             "project": tmp_path / "project", "new store": tmp_path / "new"}[mistake]  # fmt: skip
    (tmp_path / "empty").mkdir()
    (tmp_path / "project").mkdir()
    for name in ("package.json", "tsconfig.json", "notes.json"):  # JSON that is not the store's: never moved
        (tmp_path / "project" / name).write_text("{}")
    ResultStore.create(tmp_path / "new")
    before = tree(tmp_path)
    assert_refused(report("--results", store, wrong, "--out", last_report), says)
    assert tree(tmp_path) == before and left_behind(last_report) == []


def test_an_out_that_is_a_file_is_one_line(tmp_path, store):
    (tmp_path / "reports").write_text("not a folder")
    assert_refused(report("--results", store, "--out", tmp_path / "reports"), "is a file")
    assert (tmp_path / "reports").read_text() == "not a folder" and left_behind(tmp_path / "reports") == []


def test_a_failure_half_way_leaves_the_last_report_intact_and_no_staging_folder(tmp_path, store, last_report, monkeypatch):
    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(cli, "write_html", broken)  # the last file written: all the others are there
    before = tree(last_report)
    with pytest.raises(OSError, match="disk full"):
        cli.main(["--results", str(store), "--out", str(last_report)])
    assert tree(last_report) == before and left_behind(last_report) == []


def test_a_rerun_replaces_the_report_and_leaves_the_users_files_alone(tmp_path, store, last_report, capsys):
    cli.main(["--results", str(store), "--out", str(last_report)])
    assert (last_report / "notes.txt").read_text() == "mine" and left_behind(last_report) == []
    assert not (last_report / "table3_fast-0ld.csv").exists()  # a variant no longer stored
    assert "| 99 % | 96.00 ± 1.41 (n=2) |" in (last_report / "table3_fast.md").read_text()
    assert "<img" in (last_report / "index.html").read_text()  # figures inlined: nothing points at the staging folder
    printed = capsys.readouterr().out.splitlines()
    files = {Path(line) for line in printed[:-1] if not line.startswith("fig6:")}
    assert printed[-1] == f"2 stored replicas read from {store}" and all(f.is_file() for f in files)  # where they are
    # fig2 (pruned MLPs on MNIST) has runs; fig1 (HashedNets) has none, so it is not written
    assert {f.name for f in files} >= {"table3_fast.md", "fig2_fast.png", "fidelity.md", "summary.md", "index.html"}
    assert {f.parent for f in files} == {last_report}
