"""The claims added for reviewers: the paper's headline (pruning >= HashedNet), the dense control, and verdicts that
tell "holds" (a supporting cell) from "not contradicted" (nothing significant either way)."""
import math

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from scipy.stats import ttest_ind, ttest_rel

from nncompress import load_results
from nncompress.report import claims
from nncompress.report.claims import PRUNING_VS_DENSE, PRUNING_VS_HASHEDNET, comparisons, verdicts
from nncompress.report.paper import REFERENCE
from nncompress.report.tables import write_tables

from conftest import ROOT, NamedStore
from test_report import fake_record


def model_record(model: dict, ratio, seed, acc, parameters, protocol="fast", method="none"):
    record = fake_record(method, model["hidden"], "mnist", ratio, seed, acc, protocol=protocol)
    record["key"] += str(model)
    record["config"]["model"], record["parameters"] = model, parameters
    return record


def store_of(tmp_path, pruned: list, hashed: dict, dense: dict, dense_protocol="fast"):
    """magl1 at ratio 0.01 (904 parameters, protocol fast) with accuracies `pruned` per seed; HashedNets {(ratio,
    parameters, protocol): accs}; dense MLPs {hidden: accs} under `dense_protocol`."""
    store = NamedStore(tmp_path / "store")
    for seed, acc in enumerate(pruned):
        store.put(model_record({"name": "mlp", "hidden": 100}, 0.01, seed, acc, 904, "fast", method="magl1"))
    for (ratio, parameters, variant), accs in hashed.items():
        for seed, acc in enumerate(accs):
            store.put(model_record({"name": "hashednet", "hidden": 100}, ratio, seed, acc, parameters, variant))
    for hidden, accs in dense.items():
        for seed, acc in enumerate(accs):
            store.put(model_record({"name": "mlp", "hidden": hidden}, 1.0, seed, acc, 795 * hidden + 10, dense_protocol))
    return load_results(store.root)


def test_pruning_meets_the_smallest_hashednet_at_least_as_large_paired_under_one_protocol(tmp_path):
    pruned = [0.95, 0.96, 0.955]
    hashed = {(0.01, 904, "fast"): [0.90, 0.905, 0.91],  # equal size, same protocol and ratio: paired
              (0.005, 507, "fast"): [0.99, 0.99, 0.99],  # smaller: never the comparison
              (0.02, 1698, "fast"): [0.97, 0.975, 0.972],  # larger, but not the smallest large enough
              (0.02, 1698, "hashednet"): [0.80, 0.81, 0.805]}  # another variant: its own comparison, Welch
    runs = store_of(tmp_path, pruned, hashed, {})
    table = comparisons(runs)
    rows = table[table["claim"] == PRUNING_VS_HASHEDNET].set_index("comparison")
    assert sorted(rows.index) == ["magl1 vs hashednet h100 r0.01 (fast)", "magl1 vs hashednet h100 r0.02 (hashednet)"]
    same = rows.loc["magl1 vs hashednet h100 r0.01 (fast)"]
    a, b = 100 * np.array(pruned), 100 * np.array(hashed[(0.01, 904, "fast")])
    assert same["test"] == "paired t" and np.isclose(same["p"], ttest_rel(a, b).pvalue)
    other = rows.loc["magl1 vs hashednet h100 r0.02 (hashednet)"]
    c = 100 * np.array(hashed[(0.02, 1698, "hashednet")])
    assert other["test"] == "Welch t" and np.isclose(other["p"], ttest_ind(a, c, equal_var=False).pvalue)
    assert set(rows["verdict"]) == {"supports"}
    claimed = verdicts(table, ["fast"]).set_index("claim").loc[PRUNING_VS_HASHEDNET]
    assert claimed["verdict"] == "holds" and claimed["supporting"] == 2 and claimed["cells tested"] == 2


def test_pruning_meets_the_dense_mlp_nearest_its_size(tmp_path):
    pruned = [0.95, 0.96, 0.955]
    dense = {1: [0.60, 0.62, 0.61], 2: [0.97, 0.98, 0.975], 10: [0.99, 0.99, 0.991]}  # 805, 1600, 7960 parameters
    runs = store_of(tmp_path, pruned, {}, dense)
    table = comparisons(runs)
    (row,) = table[table["claim"] == PRUNING_VS_DENSE].to_dict("records")
    # 904 parameters: 805 is log(904/805) = 0.12 away, 1600 is 0.57 away
    assert row["comparison"] == "magl1 vs dense h1 (none)" and row["test"] == "Welch t"
    a, b = 100 * np.array(pruned), 100 * np.array(dense[1])
    assert np.isclose(row["p"], ttest_ind(a, b, equal_var=False).pvalue) and row["verdict"] == "supports"
    apart = store_of(tmp_path / "apart", pruned, {}, dense, dense_protocol="paper")  # trained otherwise: no control
    assert comparisons(apart).empty  # the only comparison there would be the dense control's
    larger = store_of(tmp_path / "larger", pruned, {}, {3: dense[1]})  # 2,395 parameters: 2.6x the pruned net's 904
    assert comparisons(larger).empty  # no dense MLP of its size: not tested


def test_the_dense_control_trains_as_the_pruning_method_trains(tmp_path):
    """Each pruned cell meets the unpruned MLP nearest its size with its own regularizer: MagL1's own dense run for
    MagL1, an L2 method's for OBD (it has none of its own at that width), method=none for a method without one; a
    ratio-1 cell is no pruning and meets no control."""
    store = NamedStore(tmp_path / "store")
    l1, l2 = "nncompress.compression.regularizers.L1", "nncompress.compression.regularizers.L2"
    def put(method, hidden, ratio, accs, parameters, regularizer=None):
        for seed, acc in enumerate(accs):
            record = model_record({"name": "mlp", "hidden": hidden}, ratio, seed, acc, parameters, method=method)
            if regularizer:
                record["config"]["method"]["regularizer"] = {"_target_": regularizer, "_partial_": True}
            store.put(record)
    pruned = {"magl1": [0.95, 0.96, 0.955], "obd": [0.94, 0.945, 0.95], "lth": [0.93, 0.935, 0.94]}
    put("magl1", 100, 0.01, pruned["magl1"], 904, l1)
    put("obd", 100, 0.01, pruned["obd"], 904, l2)
    put("lth", 100, 0.01, pruned["lth"], 904)
    dense = {"magl1": [0.70, 0.72, 0.71], "magl2": [0.97, 0.975, 0.98], "none": [0.40, 0.60, 0.50]}
    put("magl1", 1, 1.0, dense["magl1"], 805, l1)
    put("magl2", 1, 1.0, dense["magl2"], 805, l2)
    put("magl2", 10, 1.0, [0.99, 0.99, 0.99], 7960, l2)
    put("none", 1, 1.0, dense["none"], 805)
    put("magl1", 100, 1.0, [0.97, 0.97, 0.971], 79510, l1)  # a table's ratio-1 row: a control, never a cell
    for seed in range(3):  # a HashedNet as large as every ratio-1 net: no ratio-1 cell meets it either
        store.put(model_record({"name": "hashednet", "hidden": 100}, 1.0, seed, 0.9, 79510))
    table = comparisons(load_results(store.root))
    assert set(table["ratio"]) == {0.01} and set(table["net"]) == {"h100"}
    rows = table[table["claim"] == PRUNING_VS_DENSE].set_index("comparison")
    assert sorted(rows.index) == ["lth vs dense h1 (none)", "magl1 vs dense h1 (magl1)", "obd vs dense h1 (magl2)"]
    assert set(rows["ratio"]) == {0.01}
    for comparison, (m, control) in {"magl1 vs dense h1 (magl1)": ("magl1", "magl1"), "obd vs dense h1 (magl2)": ("obd", "magl2"),
                                     "lth vs dense h1 (none)": ("lth", "none")}.items():  # fmt: skip
        a, b = 100 * np.array(pruned[m]), 100 * np.array(dense[control])
        assert np.isclose(rows.loc[comparison, "A - B"], a.mean() - b.mean())
        assert np.isclose(rows.loc[comparison, "p"], ttest_ind(a, b, equal_var=False).pvalue)
    assert rows.loc["obd vs dense h1 (magl2)", "verdict"] == "CONTRADICTS"


def test_a_control_is_compared_with_the_paper_methods_but_never_stands_for_pruning(tmp_path):
    runs_dir = tmp_path / "store"
    store = NamedStore(runs_dir)
    for seed, (acc, control) in enumerate(zip([0.95, 0.96, 0.955], [0.30, 0.25, 0.28])):
        store.put(model_record({"name": "mlp", "hidden": 100}, 0.01, seed, acc, 904, method="magl1"))
        record = model_record({"name": "mlp", "hidden": 100}, 0.01, seed, control, 904, method="random")
        record["config"]["method"]["control"] = True  # as conf/method/random.yaml says
        store.put(record)
        store.put(model_record({"name": "hashednet", "hidden": 100}, 0.01, seed, 0.9, 904))
        store.put(model_record({"name": "mlp", "hidden": 1}, 1.0, seed, 0.6, 805))
    table = comparisons(load_results(runs_dir))
    assert set(table["comparison"]) == {"magl1 vs hashednet h100 r0.01 (fast)", "magl1 vs dense h1 (none)", "random vs magl1"}
    assert table.set_index("comparison").loc["random vs magl1", "verdict"] == "CONTRADICTS"


def test_verdicts_tell_a_supported_claim_from_one_merely_not_contradicted(tmp_path):
    runs = store_of(tmp_path, [0.95, 0.96, 0.955], {(0.01, 904, "fast"): [0.951, 0.958, 0.957]}, {})
    table = comparisons(runs)
    assert set(table.loc[table["claim"] == PRUNING_VS_HASHEDNET, "verdict"]) == {"no significant difference"}
    got = verdicts(table, ["fast"]).set_index("claim")
    assert got.loc[PRUNING_VS_HASHEDNET, "verdict"] == "not contradicted" and got.loc[PRUNING_VS_DENSE, "verdict"] == "not tested"
    assert set(got["verdict"]) <= set(claims.VERDICTS)


def test_dense_control_preset_has_the_width_nearest_every_pruned_size_of_the_tables():
    """Every ratio row of the tables' MLPs (100 and 30 hidden units): the dense width of the nearest parameter count,
    counted by hand (784 inputs, 10 classes: 795 h + 10 parameters dense; r x 794 h weights + h + 10 biases pruned);
    and each method's regularizer (none included) trained at every width."""
    needed = set()
    for hidden in (100, 30):
        ratios = OmegaConf.load(ROOT / "conf" / "preset" / f"mlp_h{hidden}.yaml").ratio
        for r in ratios:
            size = round(r * 794 * hidden) + hidden + 10
            needed.add(min(range(1, 200), key=lambda h: abs(math.log((795 * h + 10) / size))))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=dense_control"], return_hydra_config=True)
        regularizer = {m.stem: OmegaConf.select(compose("train", overrides=[f"method={m.stem}"]), "method.regularizer._target_")
                       for m in (ROOT / "conf" / "method").glob("*.yaml")}  # fmt: skip
    widths = {int(w) for w in str(cfg.hydra.sweeper.params["model.hidden"]).split(",")}
    assert widths == needed and cfg.method.name == "none" and cfg.ratio == 1.0
    methods = str(cfg.hydra.sweeper.params["method"]).split(",")
    regularizers, pruning = {regularizer[m] for m in methods}, set(regularizer.values())
    assert pruning <= regularizers  # every method's regularizer has its dense runs
    assert list(cfg.seeds) == [0, 1, 2, 3, 4] and list(cfg.dataset.name) == ["mnist", "mnist_rot", "mnist_back_rand", "mnist_back_image"]


def test_a_deep_net_has_cells_and_tables_of_its_own(tmp_path):
    """LeNet-300-100's replicas are re-tested like the paper's one-layer nets, in cells of their own (`net`), never
    pooled with a one-layer net at the same ratio; its pruning is set against the dense MLP nearest its size."""
    store = NamedStore(tmp_path / "store")
    deep, one = {"name": "mlp", "hidden": [300, 100]}, {"name": "mlp", "hidden": 100}
    l1, l2, single = [0.981, 0.982, 0.980], [0.975, 0.974, 0.976], [0.90, 0.91, 0.905]
    for seed in range(3):
        store.put(model_record(deep, 0.01, seed, l1[seed], 2664, method="magl1"))
        store.put(model_record(deep, 0.01, seed, l2[seed], 2664, method="magl2"))
        store.put(model_record(deep, 0.01, seed, 0.95, 2664, method="obd"))
        store.put(model_record(one, 0.01, seed, single[seed], 904, method="magl1"))  # would drag magl1's mean down
        store.put(model_record({"name": "mlp", "hidden": 3}, 1.0, seed, 0.7, 2395))
        snip = model_record(deep, 0.01, seed, 0.96 + seed / 1000, 2664, method="snip")
        store.put(snip)
    table = comparisons(load_results(store.root)).set_index(["net", "comparison"])
    row = table.loc[("h300-100", "magl1 vs magl2")]
    a, b = 100 * np.array(l1), 100 * np.array(l2)
    assert row["claim"] == claims.L1_VS_L2 and np.isclose(row["p"], ttest_rel(a, b).pvalue)
    assert np.isclose(row["A - B"], (a - b).mean())  # the one-layer magl1 (90 %) is not in it
    assert table.loc[("h300-100", "magl1 vs dense h3 (none)"), "verdict"] == "supports"
    assert ("h300-100", "snip vs magl1") in table.index and ("h100", "magl1 vs magl2") not in table.index
    tables = write_tables(load_results(store.root), tmp_path, pd.read_csv(REFERENCE))
    for method in ("snip", "magl1", "obd"):  # the paper's methods too: no table of the paper holds a deep net
        deep_table = tmp_path / f"table_{method}_300-100_fast.md"
        assert deep_table in tables and f"{method}, 300-100 hidden units" in deep_table.read_text()
    assert tmp_path / "table_magl1_100_fast.md" not in tables  # the paper's Table 1 holds it


def test_the_figures_draw_the_dense_control_a_curve_per_regularizer(tmp_path):
    """The claim's controls are what the figures draw: one dense curve per regularizer, in the colour of the method
    it is drawn as; a dense width is no pruned curve of its own."""
    from nncompress.report.figures import accuracy_curves, bytes_curves
    from nncompress.report.style import styles

    store = NamedStore(tmp_path / "store")
    l1, l2 = "nncompress.compression.regularizers.L1", "nncompress.compression.regularizers.L2"
    for method, hidden, ratio, acc, regularizer in [("magl1", 100, 0.01, 0.95, l1), ("magl1", 100, 1.0, 0.97, l1),
                                                    ("magl1", 1, 1.0, 0.7, l1), ("magl1", 2, 1.0, 0.8, l1),
                                                    ("obd", 1, 1.0, 0.75, l2), ("magl2", 1, 1.0, 0.75, l2),
                                                    ("none", 1, 1.0, 0.5, None), ("none", 2, 1.0, 0.6, None)]:  # fmt: skip
        for seed in range(2):
            record = model_record({"name": "mlp", "hidden": hidden}, ratio, seed, acc, 795 * hidden + 10, method=method)
            record["artefact_bytes"] = 4 * record["parameters"]
            if regularizer:
                record["config"]["method"]["regularizer"] = {"_target_": regularizer, "_partial_": True}
            store.put(record)
    runs = load_results(store.root)
    assert sorted(bytes_curves(runs, "mnist", "fast")[0]) == ["dense", "magl1, h100"]  # in bytes: none's widths
    curves, _ = accuracy_curves(runs, "mnist", [("magl1", "mlp"), ("obd", "mlp")], "fast")
    assert sorted(curves) == ["dense MLP (magl1)", "dense MLP (magl2)", "dense MLP (none)", "magl1, 100 hidden"]
    assert curves["dense MLP (magl1)"]["m"].tolist() == [70.0, 80.0, 97.0]  # widths 1, 2, 100: MagL1's own runs
    assert curves["magl1, 100 hidden"]["m"].round(6).tolist() == [95.0, 97.0]
    looks = styles(runs)
    assert looks.marks["dense:magl1"] == (looks.marks["magl1"][0], looks.marks["dense"][1])
    assert curves["dense MLP (magl2)"].attrs["style"] == "dense:magl2" and curves["dense MLP (none)"].attrs["style"] == "dense"
