"""Stores, records and `results.jsonl` files from elsewhere are data: tried as a hostile or careless user would."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nncompress import load_results
from nncompress.errors import UserError
from nncompress.results import MARKER, ResultStore, config_key, read_jsonl

from conftest import TINY, NamedStore, run_python, run_train
from test_report import fake_record


def tree(folder: Path) -> dict:
    """Every file under `folder` (dotfiles too) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def export(*args) -> subprocess.CompletedProcess:
    return run_python("-m", "nncompress.artefact.export", *args)


def one_line_error(proc, says: str) -> None:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and says in proc.stderr


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A tiny trained run with its model saved (results.jsonl + model.pt): what the exporter reads."""
    root = tmp_path_factory.mktemp("saved")
    proc = run_train(*TINY, "protocol.epochs=1", "save_model=true", f"hydra.run.dir={root}/run",
                     env={"NNCOMPRESS_RESULTS_DIR": str(root / "store")})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "run"


def tampered(saved_run, tmp_path, change) -> Path:
    """A copy of `saved_run` whose records `change(record)` edited."""
    run = Path(shutil.copytree(saved_run, tmp_path / "run"))
    records = [change(r) or r for r in read_jsonl(run / "results.jsonl")]
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_a_records_target_is_never_built(saved_run, tmp_path):
    victim = tmp_path / "copied"

    def hostile(record):
        record["config"]["model"] = {"_target_": "shutil.copyfile", "src": str(saved_run / "results.jsonl"),
                                     "dst": str(victim), "name": "mlp"}  # fmt: skip

    one_line_error(export(tampered(saved_run, tmp_path, hostile)), "not one of this package's")
    assert not victim.exists()


def test_a_key_that_climbs_out_writes_nothing_outside(saved_run, tmp_path):
    run = tampered(saved_run, tmp_path, lambda r: r.update(key="../../escaped_by_key"))
    before = tree(tmp_path)
    proc = export(run)
    one_line_error(proc, "holds no usable")
    assert "'key' must be 16 hexadecimal digits" in proc.stderr and tree(tmp_path) == before


def test_an_interpolation_in_a_record_is_never_resolved(saved_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_OF_THE_READER", "s3cr3t")
    run = tampered(saved_run, tmp_path, lambda r: r["config"]["dataset"].update(name="${oc.env:SECRET_OF_THE_READER}"))
    proc = export(run)
    one_line_error(proc, "interpolation")
    assert "s3cr3t" not in proc.stdout + proc.stderr


def test_the_exporter_reads_a_store_without_writing_it_unless_asked(saved_run, tmp_path):
    store = saved_run.parent / "store"
    before = tree(store)
    proc = export(store, "--out", tmp_path / "a")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tree(store) == before and len(list((tmp_path / "a").glob("*.safetensors"))) == 1
    proc = export(store, "--update-store")  # into the store itself, beside its entries
    records = ResultStore.open(store).records()
    assert proc.returncode == 0 and [r.get("artefact_bytes") for r in records] == [
        (store / "artefacts" / f"{r['key']}.safetensors").stat().st_size for r in records]  # fmt: skip


def test_a_report_imports_nothing_a_record_names(tmp_path):
    code = f"""
import sys
from nncompress.results import ResultStore, config_key
from nncompress import load_results
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_report import fake_record
store = ResultStore.create({str(tmp_path / "store")!r})
record = fake_record("magl1", 100, "mnist", 0.01, 0, 0.9)
record["key"] = config_key(record["key"])
record["config"]["method"]["saliency"] = {{"_target_": "this.Anything", "x": 1}}
store.put(record)
runs = load_results(store.root)
assert len(runs) == 1 and "this" not in sys.modules, sorted(sys.modules)
"""
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Beautiful is better than ugly" not in proc.stdout + proc.stderr


def test_a_store_read_changes_no_byte_and_one_bad_entry_is_one_warning(tmp_path, caplog):
    store = NamedStore(tmp_path / "store")
    for seed, acc in enumerate([0.95, 0.96, 0.97]):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, acc))
    bad = {"no config": {k: v for k, v in fake_record("obd", 100, "mnist", 0.01, 0, 0.9).items() if k != "config"},
           "no accuracy": {k: v for k, v in fake_record("obd", 100, "mnist", 0.01, 1, 0.9).items() if k != "test_acc"},
           "string accuracy": fake_record("obd", 100, "mnist", 0.01, 2, "0.9"),
           "NaN accuracy": fake_record("obd", 100, "mnist", 0.01, 3, float("nan"))}  # fmt: skip
    for name, record in bad.items():
        key = config_key(name)
        store.path(key).write_text(json.dumps({**record, "key": key}))  # as a hand edit would leave it (NaN too)
    store.path(config_key("truncated")).write_text('{"key": "')
    (store.root / "notes.txt").write_text("mine")
    os.chmod(store.root, 0o555)  # a reader needs no write access at all
    try:
        before = tree(store.root)
        caplog.clear()
        runs = load_results(store.root)
        assert tree(store.root) == before
    finally:
        os.chmod(store.root, 0o755)
    assert sorted(runs["acc"].round(6)) == [95.0, 96.0, 97.0]
    assert len(runs.attrs["left_out"]) == 5
    assert sorted(runs.attrs["left_out"].values()) == sorted([
        "no 'config'", "no 'test_acc'", "'test_acc' must be a finite number in [0, 1], got '0.9'",
        "'test_acc' must be a finite number in [0, 1], got 'nan'", "not JSON (truncated or edited)"])  # fmt: skip
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]  # warnings: on stderr in a command
    assert len(warned) == 2 and all(w.startswith("warning: ") for w in warned)
    assert sum("left out" in w for w in warned) == 1 and any("5 stored entries left out" in w for w in warned)  # one for all five
    assert any("not results-store entries, left alone: notes.txt" in w for w in warned)


def test_a_transient_read_error_is_an_error_never_damaged(tmp_path, monkeypatch):
    """The read itself fails, as a PermissionError or EIO would (made so: root, who runs CI, reads any file)."""
    store = NamedStore(tmp_path / "store")
    store.put(fake_record("magl1", 100, "mnist", 0.01, 0, 0.9))
    (entry,) = store.entries()
    real = Path.read_text

    def failing(path, *args, **kwargs):
        if path == entry:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", failing)
    with pytest.raises(UserError, match="cannot read results-store entry .*Permission denied"):
        load_results(store.root)
    monkeypatch.undo()
    assert entry.exists() and not (store.root / "damaged").exists() and len(load_results(store.root)) == 1


@pytest.mark.parametrize("results_dir, says", [("", "results_dir is empty"), ("project", "holds other files"),
                                               ("file", "is a file")])  # fmt: skip
def test_a_run_never_takes_a_folder_that_is_not_a_store(tmp_path, results_dir, says):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("package.json", "tsconfig.json"):
        (project / name).write_text("{}")
    (tmp_path / "file").write_text("x")
    before = tree(project), (tmp_path / "file").read_text()
    path = {"": "", "project": str(project), "file": str(tmp_path / "file")}[results_dir]
    proc = run_train(*TINY, f"hydra.run.dir={tmp_path}/run", cwd=project, env={"NNCOMPRESS_RESULTS_DIR": path})
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and says in proc.stderr
    assert (tree(project), (tmp_path / "file").read_text()) == before  # nothing moved, nothing written


def test_a_bad_entry_is_left_alone_by_a_run_and_retrained_on_repair(tmp_path, results_dir):
    assert run_train(*TINY, "protocol.epochs=1", "seeds=[0,1]", f"hydra.run.dir={tmp_path}/a").returncode == 0
    assert (results_dir / MARKER).exists()
    entries = sorted(ResultStore.open(results_dir).entries())
    entries[0].write_text(entries[0].read_text()[:20])  # truncated
    entries[1].write_text(json.dumps({k: v for k, v in json.loads(entries[1].read_text()).items() if k != "test_acc"}))
    before = tree(results_dir)
    proc = run_train(*TINY, "protocol.epochs=1", "seeds=[0,1]", f"hydra.run.dir={tmp_path}/b")
    assert proc.returncode == 0 and "repair=true" in proc.stderr and "nothing trained: 0 of 2" in proc.stdout
    assert tree(results_dir) == before
    proc = run_train(*TINY, "protocol.epochs=1", "seeds=[0,1]", "repair=true", f"hydra.run.dir={tmp_path}/c")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (results_dir / "damaged").iterdir()) == [p.name for p in entries]
    assert [r["key"] for r in ResultStore.open(results_dir).records()] == [p.stem for p in entries]
    first, again = ([(r["key"], r["test_acc"]) for r in read_jsonl(tmp_path / d / "results.jsonl")] for d in "ac")
    assert first == again


def test_a_report_over_a_store_changes_no_byte_of_it(tmp_path):
    """Bad entries, entries of the first key scheme and a foreign file: all read, or left out, in place."""
    store = NamedStore(tmp_path / "store")
    for seed, acc in enumerate([0.95, 0.96]):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, acc))
    store.path(config_key("truncated")).write_text('{"key": ')
    for v1 in (Path(__file__).parent / "fixtures" / "store_v1").glob("*.json"):
        shutil.copy(v1, store.root)
    (store.root / "package.json").write_text("{}")
    before = tree(store.root)
    proc = run_python("-m", "nncompress.report", "--results", store.root, "--out", tmp_path / "reports")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tree(store.root) == before and not {"damaged", "migrated", "claims"} & set(os.listdir(store.root))
    assert "1 unusable entry left out" in proc.stdout and "package.json" in proc.stderr


@pytest.mark.parametrize("edit", [lambda r: r["config"]["protocol"].update(name="x/y"),
                                  lambda r: r["config"]["method"].update(name="my/method"),
                                  lambda r: r.update(dataset="a/b"),
                                  lambda r: r["config"]["protocol"].update(name="../../conf/experiment/paper"),
                                  lambda r: r["config"]["model"].update(hidden="abc")])  # fmt: skip
def test_a_record_whose_names_or_sizes_a_report_cannot_use_is_left_out(tmp_path, edit):
    store = NamedStore(tmp_path / "store")
    for seed, acc in enumerate([0.95, 0.96]):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, acc))
    odd = fake_record("magl1", 100, "mnist", 0.01, 2, 0.97)
    edit(odd)
    store.put(odd)
    runs = load_results(store.root)
    assert len(runs) == 2 and len(runs.attrs["left_out"]) == 1
