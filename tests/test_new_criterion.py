"""A pruning criterion the project does not ship, added the way a researcher would: one class, one yaml, no edit of
the package; it trains, and it reaches the report's figures, tables and claims."""
import os

from nncompress.report.claims import comparisons
from nncompress.replicas import load_results
from nncompress.report.cli import main
from nncompress.report.figures import figure_curves

from conftest import run_train

CRITERION = '''
from dataclasses import dataclass

from nncompress.compression.saliency import Criterion


@dataclass
class Reversed(Criterion):
    """Prunes the largest weights first: a criterion no one would use, and one whose results differ from MagL1's."""

    def scores(self, model, batches, loss, replicas):
        return [-layer.replica_weight().abs() for layer in model.layers]
'''

METHOD = """name: reversed
saliency:
  _target_: toy_criterion.Reversed
regularizer:
  _target_: nncompress.compression.regularizers.L1
  _partial_: true
"""


def test_a_criterion_added_outside_the_package_trains_and_reaches_the_report(tmp_path):
    (tmp_path / "toy_criterion.py").write_text(CRITERION)
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "reversed.yaml").write_text(METHOD)
    store = tmp_path / "store"
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run = run_train(
        "-m", f"--config-dir={tmp_path / 'conf'}", "method=magl1,reversed",
        "ratio=[0.5,0.1]", "seeds=[0,1]", "dataset.train_size=600", "dataset.test_size=300", "protocol.epochs=2",
        "pruning.timing.first_epoch=0", "pruning.timing.final_epochs=1", "schedule.steps=1", "logger=none",
        f"results_dir={store}", f"hydra.sweep.dir={tmp_path / 'sweep'}", env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    runs = load_results(store)
    assert sorted(set(runs["method"])) == ["magl1", "reversed"] and len(runs) == 8
    kept = runs.groupby("method")["nonzero_weights"].sum()
    assert kept["reversed"] == kept["magl1"]  # pruned to the same targets, by other weights
    main(["--results", str(store), "--out", str(tmp_path / "reports")])
    (protocol,) = set(runs["protocol"])  # one variant of fast (its data and pruning timing) for both methods
    assert protocol == "fast_test_size=300_train_size=600_steps=1_final_epochs=1_first_epoch=0"
    curves, _ = figure_curves(runs, 2, protocol)
    assert "reversed, 100 hidden" in curves and "magl1, 100 hidden" in curves
    assert "| 90 % |" in (tmp_path / "reports" / f"table_reversed_100_{protocol}.md").read_text()
    table = comparisons(runs).set_index("comparison")
    assert set(table.loc["reversed vs magl1", "n"]) == {"2 pairs"}  # one comparison per ratio
    assert "reversed >= magl1" in (tmp_path / "reports" / "summary.md").read_text()
