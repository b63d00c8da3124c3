"""FLOPs, speedup and compression on every record: against hand counts on small nets of each family, against
PyTorch's own FLOP counter on the dense nets, through a real run, and filled in for records stored before them."""
import json
import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nncompress.models.convnet import PopulationConvNet
from nncompress.models.factory import MLP, ConvNet, HashedNet
from nncompress.models.hashednet import HashedPopulationMLP
from nncompress.models.measures import MEASURES, measured
from nncompress.models.mlp import PopulationMLP
from nncompress.replicas import load_results

from conftest import ROOT, NamedStore, run_train


def generators(n):
    return [torch.Generator().manual_seed(s) for s in range(n)]


def consistent(counts: dict) -> None:
    assert counts["speedup"] == pytest.approx(counts["dense_flops"] / counts["flops"])
    assert counts["compression"] == pytest.approx(counts["dense_parameters"] / counts["parameters"])


def test_a_pruned_mlp_multiplies_its_kept_weights_only():
    model = PopulationMLP(1, 2, [6, 4, 3], "relu")
    model.init_(generators(1), "paper")
    # replica 1 keeps the first 10 of layer 0's 24 weights and 5 of layer 1's 12; replica 0 keeps all
    keep = [torch.ones(2, 6, 4, dtype=torch.bool), torch.ones(2, 4, 3, dtype=torch.bool)]
    keep[0][1].view(-1)[10:] = False
    keep[1][1].view(-1)[5:] = False
    for layer, mask in zip(model.layers, keep):
        layer.set_replica_mask_(mask)
    dense, pruned = model.replica_counts()
    # 6*4 + 4*3 = 36 multiply-adds dense, 10 + 5 = 15 pruned; 4 + 3 = 7 biases
    assert (dense["flops"], dense["dense_flops"], dense["speedup"], dense["compression"]) == (36, 36, 1.0, 1.0)
    assert (pruned["flops"], pruned["dense_flops"], pruned["parameters"], pruned["dense_parameters"]) == (15, 36, 22, 43)
    assert pruned["speedup"] == 36 / 15 and pruned["compression"] == 43 / 22
    consistent(pruned)


def test_a_hashednet_multiplies_its_whole_virtual_matrix():
    model = HashedPopulationMLP(1, 2, [6, 4, 3], "relu", ratios=[0.5, 0.1], hash_seeds=[1, 2])
    model.init_(generators(1), "paper")
    with torch.no_grad():
        model.layers[0].buckets[0] = 0.0  # a zero bucket: its virtual weights are still multiplied
    half, tenth = model.replica_counts()
    # buckets: ceil(0.5 * 24) + ceil(0.5 * 12) = 18 and ceil(2.4) + ceil(1.2) = 5, plus 7 biases
    for counts, parameters in ((half, 18 + 7), (tenth, 5 + 7)):
        assert (counts["flops"], counts["dense_flops"], counts["speedup"]) == (36, 36, 1.0)
        assert counts["parameters"] == parameters and counts["compression"] == 43 / parameters
        consistent(counts)


def test_a_convnet_multiplies_each_non_zero_kernel_weight_at_every_position():
    model = PopulationConvNet(1, 2, kernel=3, channels=2, stride=2, pool=2, dropout=0.0, side=8, classes=3)
    model.init_(generators(1))
    with torch.no_grad():
        model.conv.weight[2:4, 0, 0, :2] = 0.0  # replica 1 (filters 2, 3): 4 of its 18 kernel weights zero
        model.head.weight.view(-1)[-1] = 0.0  # and one of its 6 linear weights
    dense, sparse = model.replica_counts()
    # conv output (8 - 3) // 2 + 1 = 3 a side: 9 positions; pooled to 1, so the head reads 2 features for 3 classes
    assert (dense["flops"], dense["dense_flops"]) == (18 * 9 + 2 * 3, 168)
    assert (sparse["flops"], sparse["dense_flops"]) == (14 * 9 + 5, 168)
    assert sparse["speedup"] == 168 / 131 and sparse["compression"] == 1.0  # never pruned: all its weights stored
    assert dense["dense_parameters"] == dense["parameters"] == 18 + 2 + 6 + 3
    consistent(sparse)


@pytest.mark.parametrize("arch", [(5, 8, 2, 4), (3, 4, 1, 2), (7, 12, 3, 3)])
def test_a_dense_convnets_flops_are_half_what_pytorch_counts(arch):
    """PyTorch's FLOP counter counts a multiply-add as two FLOPs (biases none) on the plain equivalent module."""
    kernel, channels, stride, pool = arch
    side = ((28 - kernel) // stride + 1) // pool
    plain = nn.Sequential(nn.Conv2d(1, channels, kernel, stride), nn.ReLU(), nn.MaxPool2d(pool), nn.Flatten(),
                          nn.Linear(channels * side * side, 10))  # fmt: skip
    with FlopCounterMode(display=False) as counter:
        plain(torch.zeros(1, 1, 28, 28))
    model = PopulationConvNet(1, 1, *arch, dropout=0.0)
    model.init_(generators(1))
    options = dict(zip(("kernel", "channels", "stride", "pool"), arch))
    (counts,) = model.replica_counts()
    stored = ConvNet.stored_measures(options, counts["nonzero_weights"])
    assert counts["flops"] == counts["dense_flops"] == stored["flops"] == counter.get_total_flops() // 2


def test_a_dense_mlps_flops_are_half_what_pytorch_counts():
    plain = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10))
    with FlopCounterMode(display=False) as counter:
        plain(torch.zeros(1, 784))
    stored = MLP.stored_measures({"hidden": 30}, 784 * 30 + 30 * 10)
    assert stored["flops"] == stored["dense_flops"] == counter.get_total_flops() // 2
    assert stored["dense_parameters"] == sum(p.numel() for p in plain.parameters())


def test_no_multiply_left_has_no_finite_speedup():
    assert measured(0, 36, 7, 43)["speedup"] is None  # not an infinity, which a stored record cannot hold
    assert measured(math.nan, 36, 7, 43)["compression"] == 43 / 7 and math.isnan(measured(math.nan, 36, 7, 43)["speedup"])


def test_records_stored_before_the_measures_get_them_from_their_config(tmp_path):
    """Three records of `reference/measured/` (a pruned MLP, a HashedNet, a ConvNet) without the measures, and records
    that cannot tell them: NaN there."""
    store = NamedStore(tmp_path / "store")
    old = {}
    for key in ("d2a9892b6fdae787", "1fcde0964e8e807a", "201582f4802ad9d8"):
        record = json.loads((ROOT / "reference" / "measured" / f"{key}.json").read_text())
        old[record["config"]["model"]["name"]] = record
        store.put({k: v for k, v in record.items() if k not in MEASURES})
    # a ConvNet with a zero weight: its record does not say whether a conv or a linear one
    zero = {**old["convnet"], "key": "zero-weight", "seed": 7, "nonzero_weights": 919}
    store.put(zero)
    unknown = {**old["mlp"], "key": "unknown-family", "seed": 7}
    unknown["config"] = {**unknown["config"], "model": {"name": "deep", "hidden": 20}}
    store.put(unknown)
    bare = {k: v for k, v in old["mlp"].items() if k not in ("nonzero_weights", "parameters")}
    store.put({**bare, "key": "no-counts", "seed": 8})
    held = {**old["mlp"], "key": "measured", "seed": 9, "flops": 1, "dense_flops": 2, "dense_parameters": 3,
            "speedup": 2.0, "compression": 0.5}  # fmt: skip
    store.put(held)
    rows = load_results(store.root).set_index(["model", "seed"])
    # MLP 784-30-10 keeping 357 weights (397 parameters): 23,820 weights dense, 23,860 parameters
    mlp = rows.loc[("mlp", old["mlp"]["seed"])]
    assert (mlp["flops"], mlp["dense_flops"], mlp["dense_parameters"]) == (357, 23820, 23860)
    assert mlp["speedup"] == 23820 / 357 and mlp["compression"] == 23860 / 397
    # HashedNet 784-100-10 at ratio 0.1: every one of its 79,400 virtual weights multiplied; 8,050 parameters
    hashed = rows.loc[("hashednet", old["hashednet"]["seed"])]
    assert (hashed["flops"], hashed["dense_flops"], hashed["speedup"]) == (79400, 79400, 1.0)
    assert hashed["compression"] == 79510 / 8050
    # ConvNet k5 c8 s2 p4: a 12x12 conv output (8 * 25 * 144 = 28,800), 8 * 3 * 3 features to 10 classes (720)
    conv = rows.loc[("convnet", old["convnet"]["seed"])]
    assert (conv["flops"], conv["dense_flops"], conv["speedup"], conv["compression"]) == (29520, 29520, 1.0, 1.0)
    assert math.isnan(rows.loc[("convnet", 7), "flops"]) and rows.loc[("convnet", 7), "dense_flops"] == 29520
    assert rows.loc[("deep", 7), list(MEASURES)].isna().all()  # a family the package does not ship
    assert math.isnan(rows.loc[("mlp", 8), "flops"]) and math.isnan(rows.loc[("mlp", 8), "compression"])
    assert rows.loc[("mlp", 8), "dense_flops"] == 23820  # its architecture alone tells that
    assert rows.loc[("mlp", 9), list(MEASURES)].tolist() == [1, 2, 3, 2.0, 0.5]  # a record's own are kept


def test_a_real_runs_records_carry_the_measures_of_their_non_zero_weights(tmp_path, results_dir):
    run_dir = tmp_path / "run"
    run = run_train("method=magl1", "ratio=[0.05,0.5]", "model.hidden=20", "save_model=true", f"hydra.run.dir={run_dir}",
                    "dataset.train_size=600", "dataset.test_size=300", "protocol.epochs=2", "logger=none")  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    weights = torch.load(run_dir / "model.pt")["state_dict"]
    kept = sum(int((weights[f"layers.{i}.weight"] != 0).sum()) for i in (0, 1))  # every replica's, in the saved model
    assert sum(r["flops"] for r in records) == kept and len(records) == 2
    dense = 784 * 20 + 20 * 10
    for r in records:
        assert r["flops"] == r["nonzero_weights"] < dense and r["dense_flops"] == dense
        assert r["parameters"] == r["nonzero_weights"] + 30 and r["dense_parameters"] == dense + 30
        assert r["speedup"] == dense / r["flops"] and r["compression"] == (dense + 30) / r["parameters"]
    # the same measures for the same records stored without them (load_results, through the family's spec)
    store = NamedStore(tmp_path / "old")
    for r in records:
        store.put({k: v for k, v in r.items() if k not in MEASURES})
    fresh = load_results(results_dir).set_index("key")[list(MEASURES)].sort_index()
    filled = load_results(store.root).set_index("key")[list(MEASURES)].sort_index()
    assert fresh.equals(filled) and fresh.notna().all().all()


def test_the_report_shows_the_measures_in_its_tables_and_draws_accuracy_against_flops(tmp_path):
    from nncompress.report.cli import main
    from nncompress.report.figures import size_curves
    from test_report import fake_record

    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):  # records as stored before the measures: load_results fills them
        for ratio, kept in ((0.01, 794), (0.1, 7940)):
            store.put({**fake_record("magl1", 100, "mnist", ratio, seed, 0.9 - ratio), "nonzero_weights": kept,
                       "parameters": kept + 110})  # fmt: skip
    out = tmp_path / "reports"
    main(["--results", str(store.root), "--out", str(out)])
    table = (out / "table3_fast.md").read_text()
    # 79,400 weights and 110 biases dense: 79,510 / 904 = 88.0 and 79,400 / 794 = 100; 79,510 / 8,050 = 9.88
    assert "| parameters | FLOPs | compression | speedup |" in table
    assert "| 904 | 794 | 88× | 100× |" in table and "| 8,050 | 7,940 | 9.88× | 10× |" in table
    assert next(row for row in table.splitlines() if row.startswith("| 0 % |")).endswith("| — | — | — | — |")  # no runs
    curves, _ = size_curves(load_results(store.root), "flops", "mnist", "fast")
    assert curves["magl1, 100 hidden"]["p"].tolist() == [794, 7940]
    page = (out / "index.html").read_text()
    assert (out / "flops_mnist_fast.png").exists() and 'alt="flops_mnist_fast"' in page and "<th>FLOPs</th>" in page
