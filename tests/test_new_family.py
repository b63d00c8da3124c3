"""A model family the project does not ship, added the way a researcher would: a spec and its population model in a
module of their own, one yaml, no edit of the package; it trains, is stored, exports, reaches `load_results` and the report."""
import os

from nncompress.artefact.__main__ import measure
from nncompress.replicas import load_results

from conftest import DATA_DIR, run_python, run_train

FAMILY = '''
from dataclasses import dataclass

import torch

from nncompress.data.catalog import IMAGES
from nncompress.models.base import PopulationModel, initialised
from nncompress.models.functions import ACTIVATIONS
from nncompress.models.layers import PopulationLinear
from nncompress.models.spec import ModelSpec


class PopulationDeepMLP(PopulationModel):
    """Perceptrons of several hidden layers, from the package's population layers."""

    def __init__(self, streams, per_stream, sizes, activation):
        super().__init__(streams, per_stream)
        self.layers = torch.nn.ModuleList([PopulationLinear(streams, per_stream, sizes[0], sizes[1])] +
                                          [PopulationLinear(self.replicas, 1, a, b) for a, b in zip(sizes[1:-1], sizes[2:])])
        self.activation = activation

    def init_(self, generators, scheme):
        for layer in self.layers:
            layer.init_(generators, scheme)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = ACTIVATIONS[self.activation].forward(layer(x))
        return self.layers[-1](x)

    def replica_counts(self):
        total = sum(layer.in_features * layer.out_features for layer in self.layers)
        biases = sum(layer.out_features for layer in self.layers)
        nonzero = sum((layer.replica_weight() != 0).sum((1, 2)) for layer in self.layers).tolist()
        return [{"nonzero_weights": n, "real_weights": total, "total_weights": total, "biases": biases,
                 "parameters": total + biases} for n in nonzero]

    def artefact(self, r, dense=False, values=torch.float32):
        return ({f"layers.{i}.{part}": t for i, layer in enumerate(self.layers)
                 for part, t in (("weight", layer.replica_weight()[r].t()), ("bias", layer.replica_bias()[r]))},
                {"format": "dense-mlp"})

    def architecture(self):
        return {"sizes": [self.layers[0].in_features] + [layer.out_features for layer in self.layers],
                "activation": self.activation}


@dataclass
class DeepMLP(ModelSpec):
    """Two hidden layers of `hidden` units each."""

    sized_by = ("hidden",)
    name: str = "deep"
    hidden: int = 20

    def build(self, population, features, protocol):
        sizes = [features, self.hidden, self.hidden, IMAGES.classes]
        model = PopulationDeepMLP(population.streams, population.per_stream, sizes, protocol.activation)
        return initialised(model, population, protocol)
'''

MODEL = """_target_: deep_family.DeepMLP
name: deep
hidden: 20
"""


def train(tmp_path, *overrides):
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return run_train(f"--config-dir={tmp_path / 'conf'}", "model=deep", "dataset.train_size=600",
                     "dataset.test_size=300", "protocol.epochs=2", "logger=none", *overrides, env=env)  # fmt: skip


def test_a_family_added_outside_the_package_trains_exports_and_reaches_the_results(tmp_path, results_dir):
    (tmp_path / "deep_family.py").write_text(FAMILY)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "deep.yaml").write_text(MODEL)
    refused = train(tmp_path, "ratio=0.5")
    assert refused.returncode != 0 and "model=deep has no ratio: its size comes from hidden" in refused.stderr
    run = train(tmp_path, "seeds=[0,1]", "export=true", f"hydra.run.dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr
    rows = load_results(results_dir)
    assert len(rows) == 2 and set(rows["model"]) == {"deep"} and set(rows["architecture"]) == {""}
    assert set(rows["parameters"]) == {784 * 20 + 20 * 20 + 20 * 10 + 50} and not rows.attrs["left_out"]
    assert set(rows["role"]) == {"other"}  # not a family the package ships: listed, never compared
    report = run_python("-m", "nncompress.report", "--results", results_dir, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    read = (tmp_path / "report" / "summary.md").read_text() + (tmp_path / "report" / "index.html").read_text()
    assert "deep" in read
    for row in rows.itertuples():
        measured = measure(results_dir / "artefacts" / f"{row.key}.safetensors", None, str(DATA_DIR), "~/.cache/nncompress")
        assert measured["bytes"] == row.bytes and abs(measured["test_acc"] - row.test_acc) < 1e-4
