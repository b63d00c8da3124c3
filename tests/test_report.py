import json

import numpy as np
import pandas as pd
import pytest

from nncompress import load_results
from nncompress.report.paper import REFERENCE
from nncompress.report.tables import write_tables


from conftest import ROOT, NamedStore
from nncompress.results import config_key


def fake_record(method, hidden, dataset, ratio, seed, acc, protocol="fast", **data):
    return {"key": f"{method}-{hidden}-{dataset}-{ratio}-{seed}-{protocol}-{data}", "dataset": dataset,
            "source": "regenerated", "ratio": ratio, "seed": seed, "test_acc": acc, "parameters": 100,
            "config": {"method": {"name": method}, "model": {"name": "mlp", "hidden": hidden},
                       "protocol": {"name": protocol}, "dataset": {"name": dataset, "split": "paper", **data}}}  # fmt: skip


def lr_variant(record: dict, lr: float = 0.01) -> dict:
    """`record` trained at another learning rate: a variant of its protocol of its own (`fast_lr=0.01`)."""
    record["key"] += "-lr"
    record["config"]["protocol"]["lr"] = lr
    return record


def seeded_store(root, values: dict) -> NamedStore:
    """A store of MLPs with 100 hidden units on MNIST at ratio 0.01: per method, seed i scores values[method][i]."""
    store = NamedStore(root)
    for method, accs in values.items():
        for seed, acc in enumerate(accs):
            store.put(fake_record(method, 100, "mnist", 0.01, seed, acc))
    return store


def test_tables_match_the_store(tmp_path):
    store = NamedStore(tmp_path / "store")
    accs = {0: 0.95, 1: 0.97, 2: 0.96}
    for seed, acc in accs.items():
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, acc))
    store.put(fake_record("magl1", 100, "mnist_rot", 0.1, 0, 0.80))
    store.put(fake_record("magl1", 30, "mnist", 0.01, 0, 0.5))  # another table (2)
    write_tables(load_results(store.root), tmp_path, pd.read_csv(REFERENCE))
    t3 = pd.read_csv(tmp_path / "table3_fast.csv")
    cell = t3[(t3["dataset"] == "mnist") & (t3["edges_removed_pct"] == 99)].iloc[0]
    values = 100 * np.array(list(accs.values()))
    assert np.isclose(cell["ours_mean"], values.mean()) and np.isclose(cell["ours_std"], values.std(ddof=1))
    assert cell["n"] == 3 and cell["paper_mean"] == 94.31 and np.isclose(cell["diff"], values.mean() - 94.31)
    rot = t3[(t3["dataset"] == "mnist_rot") & (t3["edges_removed_pct"] == 90)].iloc[0]
    assert rot["ours_mean"] == 80.0 and np.isnan(rot["ours_std"]) and rot["paper_mean"] == 85.15
    assert t3["ours_mean"].notna().sum() == 2  # everything else is missing, not invented
    md = (tmp_path / "table3_fast.md").read_text()
    assert "| 99 % | 96.00 ± 1.00 (n=3) | 94.31 ± 0.20 | +1.69 |" in md and "—" in md
    t2 = pd.read_csv(tmp_path / "table2_fast.csv")
    assert t2["ours_mean"].notna().sum() == 1


def test_runs_trained_differently_under_one_protocol_name_are_never_pooled(tmp_path):
    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, 0.95))
        store.put(lr_variant(fake_record("magl1", 100, "mnist", 0.01, seed, 0.60)))
    runs = load_results(store.root)
    labels = sorted(set(runs["protocol"]))
    assert labels == ["fast", "fast_lr=0.01"]  # a record stating no lr has fast.yaml's: the plain name
    write_tables(runs, tmp_path, pd.read_csv(REFERENCE))
    means = [pd.read_csv(tmp_path / f"table3_{label}.csv").dropna(subset=["ours_mean"])["ours_mean"].item()
             for label in labels]  # fmt: skip
    assert np.allclose(means, [95.0, 60.0])
    assert set(zip(runs["protocol"], runs["settings"])) == {("fast", ""), ("fast_lr=0.01", "protocol.lr=0.01")}
    for record in store.records():  # a record stating fast.yaml's value: the plain name still
        record["config"]["protocol"].setdefault("lr", 0.05)
        store.put(record)
    runs = load_results(store.root)
    assert set(zip(runs["protocol"], runs["settings"])) == {("fast", ""), ("fast_lr=0.01", "protocol.lr=0.01")}
    store.put(fake_record("magl1", 100, "mnist", 0.01, 5, 0.95, protocol="paper"))
    assert "paper" in set(load_results(store.root)["protocol"])  # one setting under a name: the plain name


def test_a_variants_label_and_file_names_stay_when_unrelated_runs_join_the_store(tmp_path):
    """A label names what its replicas set, read from their records alone: other runs joining the store change
    neither it nor the files named after it."""
    store = NamedStore(tmp_path / "store")

    def put(acc, seed, protocol="fast", dataset="mnist", options=None, **data):
        record = fake_record("magl1", 100, dataset, 0.01, seed, acc, protocol=protocol, **data)
        record["key"] += json.dumps(options)
        for key, value in (options or {}).items():  # "protocol.lr": 1.0
            *nodes, leaf = key.split(".")
            node = record["config"]
            for name in nodes:
                node = node.setdefault(name, {})
            node[leaf] = value
        store.put(record)

    for seed in (0, 1):
        put(0.95, seed)
        put(0.90, seed, "paper", options={"protocol.lr": 1.0})
    before = load_results(store.root).set_index("key")["protocol"]
    (tmp_path / "before").mkdir(), (tmp_path / "after").mkdir()
    write_tables(load_results(store.root), tmp_path / "before", pd.read_csv(REFERENCE))
    assert set(before) == {"fast", "paper_lr=1.0"}
    for seed in (0, 1):  # other data, another dataset, another precision, an ablation of the other protocol
        put(0.50, seed, train_size=600)
        put(0.80, seed, dataset="mnist_rot")
        put(0.94, seed, options={"precision": "bf16-mixed"})
        put(0.91, seed, "paper", options={"protocol.lr": 1.0, "protocol.momentum": 0.9})
    runs = load_results(store.root)
    after = runs.set_index("key")["protocol"]
    assert after[before.index].equals(before)
    assert set(after) - set(before) == {"fast_train_size=600", "fast_precision=bf16-mixed", "paper_lr=1.0_momentum=0.9"}
    write_tables(runs, tmp_path / "after", pd.read_csv(REFERENCE))
    assert {p.name for p in (tmp_path / "before").iterdir()} < {p.name for p in (tmp_path / "after").iterdir()}
    assert (tmp_path / "after" / "table3_paper_lr=1.0.csv").exists()  # a label's dots kept in its file names


def test_one_variants_images_from_both_sources_are_told_apart(tmp_path):
    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):
        for source, acc in (("original", 0.9), ("regenerated", 0.95)):
            record = fake_record("magl1", 100, "mnist_rot", 0.01, seed, acc)
            store.put(record | {"source": source, "key": record["key"] + source})
    runs = load_results(store.root)
    assert dict(zip(runs["source"], runs["protocol"])) == {"original": "fast", "regenerated": "fast_source=regenerated"}
    assert set(runs.groupby("protocol")["acc"].mean().round(6)) == {90.0, 95.0}


@pytest.mark.parametrize("protocol", sorted(p.stem for p in (ROOT / "conf" / "protocol").glob("*.yaml")))
def test_a_protocols_defaults_are_what_hydra_composes_for_it_with_each_method(protocol):
    """With each method: snip picks pruning's timing and schedule over the protocol's, random_layer its scope."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from nncompress.replicas import flatten, protocol_defaults
    from nncompress.resources import CONF_DIR

    methods = sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml"))
    assert {"magl1", "random_layer", "snip"} <= set(methods)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for method in methods:
            cfg = compose("train", overrides=[f"protocol={protocol}", f"method={method}"])
            nodes = {"protocol": OmegaConf.to_container(cfg.protocol, resolve=True),
                     "pruning": OmegaConf.to_container(cfg.pruning, resolve=True)}  # fmt: skip
            assert protocol_defaults(protocol, method) == flatten(nodes), method


def test_a_lone_run_with_a_protocol_or_pruning_option_changed_never_bears_the_plain_protocol_name(tmp_path):
    def store_of(name, *replicas):
        store = NamedStore(tmp_path / name)
        for method, seed, trigger_lag, protocol in replicas:
            record = fake_record(method, 30, "mnist", 0.01, seed, 0.9, protocol="paper")
            record["config"]["protocol"] |= protocol
            record["config"]["pruning"] = {"timing": {"threshold": 0.96, "trigger_lag": trigger_lag}}
            if method != "none":
                record["config"]["method"]["saliency"] = {"_target_": "nncompress.compression.saliency.Magnitude"}
            store.put(record)
        return load_results(store.root).set_index(["method", "seed"])

    lagged = store_of("lagged", ("magl1", 0, 1, {}), ("magl1", 1, 1, {}), ("none", 0, 0, {}))
    assert lagged.loc[("magl1", 0), "protocol"] == "paper_trigger_lag=1"
    assert set(lagged.loc["magl1", "settings"]) == {"pruning.timing.trigger_lag=1"}
    assert lagged.loc[("none", 0), "protocol"] == "paper"  # a method that does not prune: pruning does not apply
    as_configured = store_of("paper", ("magl1", 0, 0, {"lr": 3.0}), ("magl1", 1, 0, {"lr": 3.0}))  # paper.yaml's values
    assert set(as_configured["protocol"]) == {"paper"} and set(as_configured["settings"]) == {""}
    both = store_of("both", ("magl1", 0, 0, {"lr": 3.0}), ("magl1", 1, 1, {"lr": 3.0}))  # the ablation beside it
    assert both.loc[("magl1", 0), "protocol"] == "paper" and both.loc[("magl1", 1), "protocol"] == "paper_trigger_lag=1"
    assert both.loc[("magl1", 1), "settings"] == "pruning.timing.trigger_lag=1"
    slow = store_of("slow", ("magl1", 0, 0, {"lr": 1.0}))
    assert slow["protocol"].item() == "paper_lr=1.0" and slow["settings"].item() == "protocol.lr=1.0"


def test_fidelity_counts_cells_within_the_papers_tolerance(tmp_path):
    from nncompress.report.fidelity import within_tolerance, write_fidelity

    reference = pd.read_csv(REFERENCE)
    paper = reference.set_index(["table", "dataset", "ratio"])
    store = NamedStore(tmp_path / "store")
    offsets = {1.0: 0.4, 0.5: -0.6, 0.01: 0.9, 0.002: -3.0}  # Table 5 (OBD, 100 hidden) on MNIST, points off
    for ratio, off in offsets.items():
        for seed in (0, 1):
            mean = paper.loc[(5, "mnist", ratio), "mean_pct"] + off
            store.put(fake_record("obd", 100, "mnist", ratio, seed, (mean + (0.1 if seed else -0.1)) / 100))
    runs = load_results(store.root)
    t5 = within_tolerance(runs, reference).set_index(["table", "data"]).loc[(5, "mnist")]
    # independently: within max(1, 2 sd) for 1.0, 0.5 and 0.01, the 0.002 cell only if the paper's sd is over 1.5
    expected = sum(abs(off) <= max(1.0, 2 * paper.loc[(5, "mnist", r), "std_pct"]) for r, off in offsets.items())
    assert (t5["cells"], t5["within ±1 (or 2 sd)"], t5["0 % cells"], t5["0 % within ±0.5"]) == (4, expected, 1, 1)
    assert expected == 3 + (paper.loc[(5, "mnist", 0.002), "std_pct"] >= 1.5)
    assert t5["mean abs Δ"] == pytest.approx(np.mean(np.abs(list(offsets.values()))), abs=1e-4)  # seeds' ±0.1 cancel
    assert "| fast       |            | mnist  |" in write_fidelity(runs, tmp_path, reference).read_text()
    assert "Figure 6's timing" not in (tmp_path / "fidelity.md").read_text()  # no Figure 6 runs


def test_fidelity_compares_each_variant_with_its_protocol_on_the_cells_both_have(tmp_path):
    from nncompress.report.fidelity import ablation, write_fidelity

    reference = pd.read_csv(REFERENCE)
    paper = reference.set_index(["table", "dataset", "ratio"])["mean_pct"]
    plain = {1.0: 0.2, 0.5: -0.3, 0.01: 0.5, 0.002: -0.8}  # Table 5 (OBD, 100 hidden) on MNIST, points off the paper
    variant = {0.01: -1.6, 0.002: 0.4}  # the ablation ran two of its cells
    store = NamedStore(tmp_path / "store")
    for offsets, lr, seeds in ((plain, 0.05, (0, 1)), (variant, 0.01, (0,))):  # 0.05: fast.yaml's value, the plain name
        for ratio, off in offsets.items():
            for seed in seeds:
                record = fake_record("obd", 100, "mnist", ratio, seed, (paper[(5, "mnist", ratio)] + off) / 100)
                record["key"] += f"-{lr}"
                record["config"]["protocol"]["lr"] = lr
                store.put(record)
    runs = load_results(store.root)
    row = ablation(runs, reference).iloc[0]
    assert row["protocol"] == "fast_lr=0.01" and row["settings"] == "protocol.lr=0.01" and row["base"] == "fast"
    assert (row["cells"], row["within"], row["base within"]) == (2, 1, 2)  # 0.01: -1.6 beyond the paper's ±1 (sd 0.2)
    assert (row["replicas"], row["base replicas"]) == (2, 4)  # the plain side's two seeds on the shared cells only
    assert row["mean abs Δ"] == pytest.approx(1.0, abs=1e-4) and row["base mean abs Δ"] == pytest.approx(0.65, abs=1e-4)
    assert "## Ablation" in write_fidelity(runs, tmp_path, reference).read_text()


def test_fidelity_totals_weigh_each_tables_mean_difference_by_its_cells():
    from nncompress.report.fidelity import tolerance_totals

    counts = pd.DataFrame({"protocol": "paper", "settings": "", "table": [5, 6], "data": "mnist", "cells": [4, 2],
                           "within ±1 (or 2 sd)": [3, 2], "mean abs Δ": [1.0, 4.0]})  # fmt: skip
    total = tolerance_totals(counts).iloc[0]
    assert (total["cells"], total["within ±1 (or 2 sd)"]) == (6, 5)
    assert total["mean abs Δ"] == pytest.approx((4 * 1.0 + 2 * 4.0) / 6)


def test_fidelity_compares_figure6s_last_pruning_epoch_with_the_papers(tmp_path):
    from nncompress.report.fidelity import write_fidelity

    store = NamedStore(tmp_path / "store")
    for method, epochs in (("magl1", (200, 230)), ("magl2", (150, 170))):
        for seed, epoch in enumerate(epochs):
            store.put(fake_record(method, 50, "mnist", 0.04, seed, 0.95) | {"last_pruning_epoch": epoch})
    store.put(fake_record("magl1", 50, "mnist", 0.1, 0, 0.95) | {"last_pruning_epoch": 999})  # another cell
    text = write_fidelity(load_results(store.root), tmp_path, pd.read_csv(REFERENCE)).read_text()
    rows = [line for line in text.split("## Figure 6's timing")[1].splitlines() if line.startswith("| fast")]
    assert [[c.strip() for c in row.strip("|").split("|")][2:] for row in rows] == [
        ["magl1", "2", "215", "200", "230", "210"], ["magl2", "2", "160", "150", "170", "210"]]


def test_figures_are_drawn_from_the_store(tmp_path):
    from nncompress.pareto import convnet_front, convnet_variants
    from nncompress.report.figures import figure

    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):
        for ratio, acc in ((0.1, 0.96), (0.01, 0.9)):
            store.put(fake_record("magl1", 100, "mnist_rot", ratio, seed, acc + 0.01 * seed))
        for arch, (params, acc) in {"a": (500, 0.9), "b": (900, 0.85), "c": (2000, 0.97)}.items():
            rec = fake_record("none", 100, "mnist_rot", 1.0, seed, acc)
            rec["key"] += arch
            rec["parameters"], rec["val_acc"] = params, acc
            rec["config"]["model"] = {"name": "convnet", "kernel": len(arch) * 5 + ord(arch) % 3, "channels": 4,
                                      "stride": 1, "pool": 2, "dropout": 0.0}  # fmt: skip
            store.put(rec)
    runs = load_results(store.root)
    front = convnet_front(convnet_variants(runs, "mnist_rot")["fast"])
    assert front["parameters"].tolist() == [500, 2000]  # the 900-parameter net is dominated
    png = figure(runs, 3, "fast", tmp_path)
    assert png.stat().st_size > 10_000 and png.with_suffix(".pdf").exists()


def test_summary_retests_the_claims_with_paired_tests_holm_and_verdicts(tmp_path):
    from scipy.stats import t, ttest_rel

    from nncompress.report import claims
    from nncompress.report.claims import L1_VS_L2, MAGNITUDE_VS_OBD, PRUNING_VS_CONVNET, comparisons
    from nncompress.report.summary import write_summary

    values = {"magl1": [0.95, 0.962, 0.955], "magl2": [0.90, 0.91, 0.907], "obd": [0.93, 0.94, 0.934]}
    store = seeded_store(tmp_path / "store", values)
    store.put(fake_record("magl1", 100, "mnist", 0.005, 0, 0.9))  # one seed: nothing to test
    store.put(fake_record("obd", 100, "mnist", 0.005, 0, 0.95))
    runs = load_results(store.root)
    table = comparisons(runs).set_index(["comparison", "ratio"])
    assert table.loc[("magl1 vs obd", 0.01), "verdict"] == "supports"
    assert table.loc[("magl2 vs obd", 0.01), "verdict"] == "CONTRADICTS"
    assert table.loc[("magl1 vs obd", 0.005), "verdict"] == "not tested (n < 2)"  # never "no difference"
    # paired over seeds, checked against the textbook formula: t = mean(d) / (sd(d) / sqrt(n)), 3 pairs
    a, b = (np.array(values[m]) * 100 for m in ("magl1", "magl2"))
    d = a - b
    row = table.loc[("magl1 vs magl2", 0.01)]
    assert row["test"] == "paired t" and row["claim"] == L1_VS_L2
    assert np.isclose(row["p"], 2 * t.sf(d.mean() / (d.std(ddof=1) / np.sqrt(3)), 2))
    half = t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert np.isclose(row["ci low"], d.mean() - half) and np.isclose(row["ci high"], d.mean() + half)
    assert np.isclose(row["p (Holm)"], row["p"])  # alone in its claim
    # Holm within a claim: the smaller p doubles (2 tested cells), the larger is max(its own, that)
    p = sorted(ttest_rel(np.array(values[m]) * 100, np.array(values["obd"]) * 100).pvalue for m in ("magl1", "magl2"))
    holm = table[table["claim"] == MAGNITUDE_VS_OBD].dropna(subset=["p"])["p (Holm)"].sort_values().to_numpy()
    assert np.allclose(holm, [min(1, 2 * p[0]), max(min(1, 2 * p[0]), p[1])])
    assert not (table["claim"] == PRUNING_VS_CONVNET).any()  # no ConvNets stored: that claim is not tested
    verdicts = claims.verdicts(comparisons(runs), ["fast"]).set_index("claim")["verdict"]
    assert verdicts.to_dict() == {MAGNITUDE_VS_OBD: "fails", L1_VS_L2: "holds", PRUNING_VS_CONVNET: "not tested",
                                  claims.CONVNET_VS_HASHEDNET: "not tested", claims.PRUNING_VS_HASHEDNET: "not tested",
                                  claims.PRUNING_VS_DENSE: "not tested"}  # fmt: skip
    text = write_summary(runs, tmp_path).read_text()
    assert "fails" in text and "not tested" in text and "regenerated" in text
    assert "magl2 vs obd): mnist, ratio 0.01, 100 hidden, protocol fast: A - B = -2.90 points" in text


def test_figure6_histograms_from_run_dirs(tmp_path):
    from nncompress.report.figures import histogram_figure

    store = NamedStore(tmp_path / "store")
    for method, scale in (("magl1", 0.1), ("magl2", 0.5)):
        run = tmp_path / method
        (run / "histograms").mkdir(parents=True)
        w = np.random.default_rng(0).normal(0, scale, 1000)
        counts, edges = np.histogram(w, bins=50)
        np.savez(run / "histograms" / "epoch230.npz", counts=counts[None], edges=edges[None], replicas=["seed0_ratio0.04"])
        rec = fake_record(method, 50, "mnist", 0.04, 0, 0.95)
        rec["run_dir"] = str(run)
        store.put(rec)
    path = histogram_figure(load_results(store.root), tmp_path)
    assert path is not None and path.stat().st_size > 10_000
    assert histogram_figure(load_results(store.root).assign(hidden=100), tmp_path / "none") is None
    assert histogram_figure(load_results(store.root).assign(dataset="mnist_rot"), tmp_path / "none") is None  # the paper's is MNIST


def test_runs_on_other_data_or_settings_are_never_pooled_and_every_hidden_size_is_drawn(tmp_path):
    from nncompress.report.claims import comparisons
    from nncompress.report.figures import figure_curves

    store = NamedStore(tmp_path / "store")
    for size, acc in ((500, 0.80), (2000, 0.90)):  # one seed each: a cell of n=1 apiece, never "n=2"
        store.put(fake_record("magl1", 100, "mnist", 0.01, 0, acc, train_size=size))
    for seed in (0, 1):
        store.put(fake_record("magl1", 30, "mnist", 0.01, seed, 0.7, train_size=2000))
        for epochs, acc in ((30, 0.97), (2, 0.5)):  # the paper's ConvNet training, and a 2-epoch trial
            rec = fake_record("none", 100, "mnist", 1.0, seed, acc, protocol="convnet", train_size=500)
            rec["key"] += str(epochs)
            rec["config"]["protocol"]["epochs"] = epochs
            rec["config"]["model"] = {"name": "convnet", "kernel": 5, "channels": 4, "stride": 1, "pool": 2,
                                      "dropout": 0.0}  # fmt: skip
            store.put(rec)
    runs = load_results(store.root)
    mlp = runs[runs["model"] == "mlp"]
    small = mlp[mlp["dataset.train_size"] == 500]
    assert set(mlp["protocol"]) == {"fast_train_size=500", "fast_train_size=2000"}
    assert small["settings"].item() == "dataset.train_size=500"
    assert small["data"].item() == "regenerated, paper split: 500 train / 12,000 test"
    write_tables(runs, tmp_path, pd.read_csv(REFERENCE))
    for label in set(mlp["protocol"]):
        md = (tmp_path / f"table3_{label}.md").read_text()
        assert "(n=1)" in md and "(n=2)" not in md and " train / 12,000 test" in md
    convnets = runs[runs["model"] == "convnet"]
    assert set(convnets["protocol"]) == {"convnet_train_size=500", "convnet_train_size=500_protocol.epochs=2"}
    assert "dataset.train_size=500, protocol.epochs=2" in set(convnets["settings"])
    # every hidden size is drawn; ConvNets only beside MLPs on the same data, one front per ConvNet variant
    curves, data = figure_curves(runs, 2, small["protocol"].item())
    assert {k for k in curves if not k.startswith("ConvNet")} == {"magl1, 100 hidden"}
    assert sum(k.startswith("ConvNet") for k in curves) == 2 and "500 train" in data
    curves, _ = figure_curves(runs, 2, mlp.loc[mlp["hidden"] == 30, "protocol"].iloc[0])
    assert set(curves) == {"magl1, 30 hidden", "magl1, 100 hidden"}  # no ConvNet trained on these 2,000 images
    table = comparisons(runs)
    vs = table[table["comparison"].str.contains("ConvNet")]
    assert len(vs) == 2 and set(vs["n"]) == {"1/2"} and set(vs["verdict"]) == {"not tested (n < 2)"}


def test_accuracy_against_bytes_figure_and_summary_section(tmp_path):
    from nncompress.report.figures import size_figure
    from nncompress.report.summary import write_summary

    store = NamedStore(tmp_path / "store")
    store.put(fake_record("magl1", 100, "mnist", 0.01, 9, 0.9))  # an older record: no artefact_bytes
    runs = load_results(store.root)
    assert "Not tested: no stored replica has an artefact" in write_summary(runs, tmp_path).read_text()
    for seed in (0, 1, 2):
        pruned = fake_record("magl1", 100, "mnist", 0.01, seed, 0.95 + 0.001 * seed)
        pruned["artefact_bytes"] = 6000
        store.put(pruned)
        for arch, (nbytes, acc) in {"small": (5000, 0.90), "big": (9000, 0.99)}.items():
            conv = fake_record("none", 100, "mnist", 1.0, seed, acc + 0.001 * seed)
            conv["key"] += arch
            conv["artefact_bytes"], conv["parameters"] = nbytes, 50
            conv["config"]["model"] = {"name": "convnet", "kernel": len(arch), "channels": 4, "stride": 1, "pool": 2, "dropout": 0.0}
            store.put(conv)
    runs = load_results(store.root)
    assert size_figure(runs, "bytes", "mnist", "fast", tmp_path).stat().st_size > 10_000
    summary = write_summary(runs, tmp_path).read_text()
    section = summary[summary.index("## At equal bytes on disk") :]
    # At equal parameters every ConvNet (50) fits under the MLP's 100 and the big one wins; at equal bytes only the
    # 5,000-byte one fits under the pruned MLP's 6,000, and pruning wins: 95 % vs 90 %.
    verdict = [line for line in section.splitlines() if line.startswith("| pruning >= a ConvNet") and "Welch" not in line]
    assert len(verdict) == 1 and "| holds " in verdict[0]
    cell = [c.strip() for c in next(line for line in section.splitlines() if "magl1 vs ConvNet" in line).split("|")]
    at = next(i for i, c in enumerate(cell) if c.startswith("magl1 vs ConvNet"))
    assert cell[at + 1 : at + 4] == ["95.1", "90.1", "5"]
    assert "CONTRADICTS" in summary[: summary.index("## At equal bytes on disk")]  # at equal parameters, it fails


def test_a_pruning_method_the_paper_did_not_test_reaches_figures_tables_and_claims(tmp_path):
    from nncompress.report.claims import comparisons, verdicts
    from nncompress.report.cli import main
    from nncompress.report.figures import figure_curves

    values = {"magl1": [0.95, 0.96, 0.955], "obd": [0.93, 0.94, 0.934], "toy": [0.90, 0.91, 0.907]}
    store = seeded_store(tmp_path / "store", values)
    store.put(fake_record("toy", 100, "mnist_rot", 0.1, 0, 0.8))  # one seed, on data no paper method has here
    out = tmp_path / "reports"
    main(["--results", str(store.root), "--out", str(out)])
    runs = load_results(store.root)
    # Figure 2 (MNIST): its curve after the paper's; Figure 3 (MNIST rot): its curve alone
    curves, _ = figure_curves(runs, 2, "fast")
    assert list(curves) == ["magl1, 100 hidden", "obd, 100 hidden", "toy, 100 hidden"]
    assert np.isclose(curves["toy, 100 hidden"]["m"].item(), 100 * np.mean(values["toy"]))
    assert list(figure_curves(runs, 3, "fast")[0]) == ["toy, 100 hidden"]
    # a table shaped like the paper's, without the paper's columns; the paper's tables never show it
    md = (out / "table_toy_100_fast.md").read_text()
    assert "| edges removed | mnist ours | mnist_rot ours |" in md and "paper" not in md.split("\n| edges")[1]
    assert "| 90 % | — | 80.00 (n=1) |" in md and "| 99 % | 90.57 ± 0.51 (n=3) | — |" in md
    csv = pd.read_csv(out / "table_toy_100_fast.csv").dropna(subset=["ours_mean"])
    assert sorted(csv["n"]) == [1, 3]
    assert all("toy" not in p.read_text() for p in out.glob("table[1-6]_fast.md"))
    # paired with each paper method it shares a cell with, under a claim of its own
    table = comparisons(runs).set_index("comparison")
    for paper in ("magl1", "obd"):
        row = table.loc[f"toy vs {paper}"]
        assert row["claim"] == f"toy >= {paper}" and row["test"] == "paired t" and row["n"] == "3 pairs"
        assert row["verdict"] == "CONTRADICTS"
    assert "toy vs magl2" not in table.index  # no magl2 runs to compare with
    claimed = verdicts(comparisons(runs), ["fast"]).set_index("claim")["verdict"]
    assert claimed["toy >= magl1"] == claimed["toy >= obd"] == "fails"
    summary, page = (out / "summary.md").read_text(), (out / "index.html").read_text()
    assert "| toy >= obd " in summary and "toy, 100 hidden units (not in the paper)" in summary
    assert "toy &gt;= magl1" in page and "toy, 100 hidden units (not in the paper)" in page


def test_a_report_reads_several_stores_together_each_replica_once(tmp_path, capsys):
    """A store of one's own beside a committed snapshot (reference/measured): both are read, and a replica kept in
    both counts once, with the record of the store named last."""
    from nncompress.report.cli import main

    mine, snapshot, out = NamedStore(tmp_path / "mine"), NamedStore(tmp_path / "snapshot"), tmp_path / "reports"
    for seed, acc in enumerate([0.90, 0.92]):
        snapshot.put(fake_record("magl1", 100, "mnist", 0.01, seed, acc))
    mine.put(fake_record("magl1", 100, "mnist", 0.01, 1, 0.94))  # seed 1 again: the same key
    mine.put(fake_record("magl1", 100, "mnist", 0.01, 2, 0.96))
    main(["--results", str(snapshot.root), str(mine.root), "--out", str(out)])
    assert f"3 stored replicas read from {snapshot.root}, {mine.root}" in capsys.readouterr().out
    assert "| 99 % | 93.33 ± 3.06 (n=3) |" in (out / "table3_fast.md").read_text()  # 90, 94, 96
    page = (out / "index.html").read_text()
    assert f"stores <code>{snapshot.root}</code>, <code>{mine.root}</code>: 3 replicas" in page


def test_a_new_report_leaves_no_table_of_a_variant_no_longer_in_the_store(tmp_path):
    from nncompress.report.cli import main

    store, out = NamedStore(tmp_path / "store"), tmp_path / "reports"
    lr = fake_record("magl1", 100, "mnist", 0.01, 0, 0.9)
    lr["key"] += "-lr"
    lr["config"]["protocol"]["lr"] = 0.01
    store.put(fake_record("magl1", 100, "mnist", 0.01, 0, 0.95))
    store.put(lr)
    main(["--results", str(store.root), "--out", str(out)])
    variants = sorted(set(load_results(store.root)["protocol"]))
    assert len(variants) == 2 and all((out / f"table3_{v}.md").exists() for v in variants)
    (out / "notes.txt").write_text("mine")
    store.path(config_key(lr["key"])).unlink()  # one variant left: its tables go by the plain protocol name
    assert len(list(store.root.glob("*.json"))) == 1
    main(["--results", str(store.root), "--out", str(out)])
    assert sorted(p.name for p in out.glob("table3_*.md")) == ["table3_fast.md"]
    assert (out / "notes.txt").read_text() == "mine"  # files the report did not write are kept


def welch_p(m1, s1, m2, s2, n=5):
    """Two-sided Welch t-test p-value from means and sample standard deviations, written out."""
    v1, v2 = s1**2 / n, s2**2 / n
    t = (m1 - m2) / np.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (n - 1) + v2**2 / (n - 1))
    from scipy.stats import t as student

    return 2 * student.sf(abs(t), df)


def test_fidelity_checks_the_order_of_methods_wherever_the_paper_separates_them(tmp_path):
    from nncompress.report.fidelity import method_order, write_fidelity

    reference = pd.read_csv(REFERENCE)
    paper = reference[(reference["hidden"] == 30) & (reference["dataset"] == "mnist_rot")]
    paper = paper.set_index(["method", "ratio"])
    ours = {  # mnist_rot, 30 hidden, accuracy % per seed
        (0.01, "magl2"): [50.0, 51.0, 52.0],
        (0.01, "magl1"): [48.0, 49.1, 49.9],  # 2 below MagL2, as the paper has it
        (0.01, "obd"): [51.0, 52.1, 52.9],  # 1 above MagL2, the paper has it 1 below
        (0.03, "magl1"): [70.0, 71.0, 72.0], (0.03, "magl2"): [71.0, 70.0, 69.0], (0.03, "obd"): [60.0, 61.0, 62.0],
        (0.012, "magl1"): [52.0, 54.0, 53.0], (0.012, "obd"): [53.5, 53.0, 53.6],  # reversed, within noise
        (0.1, "magl1"): [80.0, 81.0, 82.0], (0.1, "magl2"): [80.0, 81.0, 82.0],  # tied, seed by seed
    }  # fmt: skip
    store = NamedStore(tmp_path / "store")
    for (ratio, method), accs in ours.items():
        for seed, acc in enumerate(accs):
            store.put(fake_record(method, 30, "mnist_rot", ratio, seed, acc / 100))
    store.put(fake_record("obd", 30, "mnist_rot", 0.1, 7, 0.8))  # no seed shared with MagL1: not compared
    order = method_order(load_results(store.root), reference)
    expected = []  # independently: the pairs with both sides run that the paper's numbers separate at 5 %
    for ratio in (0.01, 0.03, 0.012, 0.1):
        for a, b in (("magl1", "magl2"), ("magl1", "obd"), ("magl2", "obd")):
            if (ratio, a) in ours and (ratio, b) in ours:
                pa, pb = paper.loc[(a, ratio)], paper.loc[(b, ratio)]
                if welch_p(pa["mean_pct"], pa["std_pct"], pb["mean_pct"], pb["std_pct"]) < 0.05:
                    expected.append((ratio, f"{a} - {b}"))
    assert sorted(zip(order["ratio"], order["pair"])) == sorted(expected)
    assert (0.012, "magl1 - obd") in expected and not any(r == 0.03 for r, _ in expected)  # 0.03: no separation
    got = order.set_index(["ratio", "pair"])
    assert got.loc[(0.01, "magl1 - magl2"), "order"] == "same"
    assert got.loc[(0.01, "magl1 - obd"), "order"] == "same"
    assert got.loc[(0.01, "magl2 - obd"), "order"] == "reversed, significant"  # paired differences -1, -1.1, -0.9
    assert got.loc[(0.012, "magl1 - obd"), "order"] == "reversed"
    assert got.loc[(0.1, "magl1 - magl2"), "order"] == "tied"
    assert np.isclose(got.loc[(0.01, "magl2 - obd"), "ours"], -1.0)
    assert np.isclose(got.loc[(0.01, "magl2 - obd"), "paper"], 51.70 - 50.71)
    rot = reference[reference["dataset"] == "mnist_rot"]  # Holm by hand over all the paper's pairs on mnist_rot

    def cell(method, hidden, ratio):
        row = rot[(rot["method"] == method) & (rot["hidden"] == hidden) & np.isclose(rot["ratio"], ratio)].iloc[0]
        return row["mean_pct"], row["std_pct"]

    family = {(h, r, f"{a} - {b}"): welch_p(*cell(a, h, r), *cell(b, h, r))
              for h, r in rot[["hidden", "ratio"]].drop_duplicates().itertuples(index=False)
              for a, b in (("magl1", "magl2"), ("magl1", "obd"), ("magl2", "obd"))
              if {a, b} <= set(rot[(rot["hidden"] == h) & (rot["ratio"] == r)]["method"])}  # fmt: skip
    ranked, holm, running = sorted(family, key=family.get), {}, 0.0
    for i, key in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - i) * family[key]))
        holm[key] = running
    for (ratio, pair), row in got.iterrows():
        assert np.isclose(row["paper p (Holm)"], holm[(30, ratio, pair)])
    kept = [key for key in got.index if holm[(30, *key)] < 0.05]
    assert 0 < len(kept) < len(got)  # the family drops some of the pairs 5 % alone keeps
    text = write_fidelity(load_results(store.root), tmp_path, reference).read_text()
    row = next(line for line in text.split("## Order of methods")[1].splitlines() if "mnist_rot" in line)
    same = sum(got.loc[key, "order"] == "same" for key in kept)
    assert [c.strip() for c in row.strip("|").split("|")][2:] == ["mnist_rot", "5", "2", "1", "2", "1", str(len(kept)), str(same)]


def test_cells_holding_replicas_that_learned_nothing_are_marked_in_tables_fidelity_and_claims(tmp_path):
    from nncompress.report import claims
    from nncompress.report.fidelity import within_tolerance, write_fidelity
    from nncompress.report.summary import write_summary

    values = {"magl1": [0.112, 0.121, 0.113], "obd": [0.95, 0.962, 0.955]}  # every MagL1 seed stuck at chance
    store = seeded_store(tmp_path / "store", values)
    for record in store.records():
        record["learned"] = record["config"]["method"]["name"] != "magl1"
        store.put(record)
    store.put(fake_record("magl1", 100, "mnist", 0.1, 0, 0.112))  # a record from before the check: no `learned`
    runs = load_results(store.root)
    assert runs["at_chance"].sum() == 3 and not runs.loc[runs["ratio"] == 0.1, "at_chance"].any()
    reference = pd.read_csv(REFERENCE)
    write_tables(runs, tmp_path, reference)
    mag = 100 * np.array(values["magl1"])
    md = (tmp_path / "table3_fast.md").read_text()  # kept in the mean, and said
    assert f"| 99 % | {mag.mean():.2f} ± {mag.std(ddof=1):.2f} (n=3, 3 at chance) |" in md and "kept in the mean" in md
    assert "| 90 % | 11.20 (n=1) |" in md and "at chance" not in (tmp_path / "table5_fast.md").read_text()
    counts = within_tolerance(runs, reference).set_index("table")["cells with replicas at chance"]
    assert counts.to_dict() == {3: 1, 5: 0}
    assert "cells with replicas at chance" in write_fidelity(runs, tmp_path, reference).read_text()
    table = claims.comparisons(runs).set_index("comparison")
    assert table.loc["magl1 vs obd", "at chance"] == 3 and table.loc["magl1 vs obd", "verdict"] == "CONTRADICTS"
    verdicts = claims.verdicts(claims.comparisons(runs), ["fast"]).set_index("claim")
    assert verdicts.loc[claims.MAGNITUDE_VS_OBD, "cells with replicas at chance"] == 1
    assert verdicts.loc[claims.L1_VS_L2, "cells with replicas at chance"] == 0
    assert "p (Holm) = " in (text := write_summary(runs, tmp_path).read_text()) and "; 3 of its replicas at chance" in text
    from nncompress.report.page import write_html

    page = write_html(runs, tmp_path, reference, [], [store.root]).read_text()
    assert "(n=3, 3 at chance)" in page and "kept in the mean" in page


def drawn(fig) -> dict:
    """A figure's curves as drawn: label -> (colour, marker, x, y, half-length of each error bar)."""
    from matplotlib.colors import to_hex

    ax, out = fig.axes[0], {}
    for c in ax.containers:  # errorbar curves: ours and the paper's
        line, _, (bars,) = c.lines[0], c.lines[1], c.lines[2]
        half = [abs(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
        out[c.get_label()] = (to_hex(line.get_color()), line.get_marker(), list(line.get_xdata()), list(line.get_ydata()), half)
    for line in ax.lines:  # the ConvNet fronts: plain lines
        if not line.get_label().startswith("_"):
            out[line.get_label()] = (to_hex(line.get_color()), line.get_marker(), list(line.get_xdata()), list(line.get_ydata()), [])
    return out


def test_each_method_has_one_colour_and_marker_in_every_figure_and_the_papers_cells_stand_beside_ours(tmp_path, monkeypatch):
    from matplotlib.colors import to_hex

    from nncompress.report import style
    from nncompress.report.figures import figure_plot
    from nncompress.report.style import styles

    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):
        for dataset, methods in {"mnist": ("magl1", "obd", "zeta"), "mnist_rot": ("magl1", "obd", "alpha")}.items():
            for method in methods:
                for ratio in (0.01, 0.1):
                    store.put(fake_record(method, 100, dataset, ratio, seed, 0.8 + ratio + 0.01 * seed))
        store.put(fake_record("magl2", 30, "mnist", 0.1, seed, 0.9))
    runs, reference = load_results(store.root), pd.read_csv(REFERENCE)
    looks = styles(runs)
    fig2, fig3 = (drawn(figure_plot(runs, n, "fast", reference, looks)) for n in (2, 3))
    assert set(fig2) == {f"{m}, 100 hidden" for m in ("magl1", "obd", "zeta")} | {"magl2, 30 hidden"} | {
        f"{m}, 100 hidden (paper)" for m in ("magl1", "obd")} | {"magl2, 30 hidden (paper)"}  # fmt: skip
    for label in set(fig2) & set(fig3):  # magl1 and obd, ours and the paper's: the same colour and marker
        assert fig2[label][:2] == fig3[label][:2]
    marks = {label.split(",")[0]: f[label][:2] for f in (fig2, fig3) for label in f}
    assert len(set(marks.values())) == len(marks) == 5  # magl1, magl2, obd, alpha, zeta: each its own
    assert marks["magl1"][0] == to_hex("tab:blue") and marks["alpha"] != marks["zeta"]
    # a method the package ships keeps its colour whatever else the store holds (alpha sorts before it, or is gone)
    monkeypatch.setattr(style, "shipped_methods", lambda: ["zeta"])
    assert styles(runs).marks["zeta"] == styles(runs[runs["method"] != "alpha"]).marks["zeta"] != styles(runs).marks["alpha"]
    # the paper's cells: Table 3 (magl1, 100 hidden) on MNIST, each at the parameters of a 784-100-10 MLP keeping
    # that share of its 79,400 weights, plus its 110 biases; with its std as the error bar
    colour, marker, x, y, half = fig2["magl1, 100 hidden (paper)"]
    cells = reference[(reference["table"] == 3) & (reference["dataset"] == "mnist")].sort_values("ratio")
    assert np.allclose(x, cells["ratio"] * 79_400 + 110) and np.allclose(y, cells["mean_pct"])
    assert np.allclose(half, cells["std_pct"]) and (colour, marker) == fig2["magl1, 100 hidden"][:2]
    assert np.allclose(fig2["magl1, 100 hidden"][3], [81.5, 90.5])  # ours: the mean over seeds at ratio 0.01 and 0.1 (%)
    mnist_rot = reference[(reference["table"] == 5) & (reference["dataset"] == "mnist_rot")].sort_values("ratio")
    assert np.allclose(fig3["obd, 100 hidden (paper)"][3], mnist_rot["mean_pct"])
    assert "zeta, 100 hidden (paper)" not in fig2  # a method the paper did not test has no cells of its own


def label_boxes(fig, axis):
    fig.canvas.draw()
    labels = axis.get_majorticklabels() + axis.get_minorticklabels()
    return sorted((t.get_window_extent() for t in labels if t.get_visible() and t.get_text()), key=lambda b: b.x0)


@pytest.mark.parametrize("low, high", [(270, 4800), (250, 80_000), (100, 1e5), (20, 5e8), (300, 450)])
def test_log_axis_labels_never_overlap_and_titles_and_legends_stay_in_the_figure(low, high):
    from nncompress.report.figures import plot
    from nncompress.report.style import FIXED, Styles

    p = np.geomspace(low, high, 12)
    curve = pd.DataFrame({"p": p, "m": np.linspace(60, 98, 12), "s": 0.5})
    curve.attrs.update(style="magl1", hidden=100)
    looks = Styles(FIXED, {100: "-"}, {})
    long = "protocol paper_hessian_at=first_step (method.saliency.hessian_at=first_step, pruning.timing.trigger_lag=1)"
    fig = plot({"magl1, 100 hidden": curve}, {}, "parameters", f"Figure 2: mnist, {long}\n{long}; {long}", looks)
    boxes = label_boxes(fig, fig.axes[0].xaxis)
    assert len(boxes) >= (2 if high / low >= 10 else 1)  # labelled, not silenced
    assert all(b.x0 >= a.x1 for a, b in zip(boxes, boxes[1:]))  # no two labels touch
    assert not any(t.get_text() for t in fig.axes[0].xaxis.get_minorticklabels())
    whole = fig.bbox
    for artist in (fig._suptitle, fig.legends[0], fig.axes[0].xaxis.label):
        box = artist.get_window_extent()
        assert box.x0 >= whole.x0 and box.x1 <= whole.x1 and box.y0 >= whole.y0 and box.y1 <= whole.y1, artist


def test_a_figure_is_written_only_where_its_variant_has_runs_of_its_own(tmp_path):
    """No placeholder (a figure of nothing) and no copy (a variant's figure holding only the ConvNet front every
    variant shares); summary.md says why each missing figure is missing."""
    from nncompress.report.figures import write_figures
    from nncompress.report.summary import write_summary

    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, 0.95))
        store.put(lr_variant(fake_record("magl1", 100, "mnist", 0.01, seed, 0.9)))
        conv = fake_record("none", 100, "mnist", 1.0, seed, 0.97, protocol="convnet")
        conv["config"]["model"] = {"name": "convnet", "kernel": 5, "channels": 4, "stride": 1, "pool": 2, "dropout": 0.0}
        store.put(conv)
    runs, out = load_results(store.root), tmp_path
    drawn, missing = write_figures(runs, pd.read_csv(REFERENCE), out)
    assert sorted(p.name for p in out.glob("*.png")) == ["fig2_fast.png", "fig2_fast_lr=0.01.png"]
    assert drawn == [("protocol fast", out / "fig2_fast.png"), ("protocol fast_lr=0.01", out / "fig2_fast_lr=0.01.png")]
    summary = write_summary(runs, out, missing).read_text().split("## Figures not drawn")[1]
    assert "- Figure 1 (HashedNets on mnist): no runs of its own under protocol fast, fast_lr=0.01" in summary
    assert "- Figure 3 (pruned MLPs on mnist_rot): no runs of its own under protocol fast, fast_lr=0.01" in summary
    assert "- Accuracy vs bytes: no stored replica has an artefact" in summary
    assert "- Figure 6: no MagL1/MagL2 runs with saved histograms" in summary


def test_the_page_leaves_out_what_has_nothing_to_show_and_says_so_in_one_line(tmp_path):
    from nncompress.report.page import write_html

    store = NamedStore(tmp_path / "store")
    for seed in (0, 1):
        store.put(fake_record("magl1", 100, "mnist", 0.01, seed, 0.95))
    hashed = fake_record("none", 100, "mnist", 0.01, 0, 0.8, protocol="hashednet")  # one seed: nothing to test
    hashed["config"]["model"]["name"] = "hashednet"
    store.put(hashed)
    runs = load_results(store.root)
    assert set(runs.loc[runs["role"] == "sized", "protocol"]) == {"hashednet"}
    page = write_html(runs, tmp_path, pd.read_csv(REFERENCE), [], [store.root]).read_text()
    assert ("4 sections with nothing to show left out: the claims (none tested); tables, protocol hashednet; "
            "the best at each byte budget (no artefacts); figures.") in page  # fmt: skip
    assert 'id="claims"' not in page and 'id="figures"' not in page and "Tables, protocol <code>hashednet</code>" not in page
    assert '>Tables, protocol <code>fast</code></h2>' in page and "12 claim rows not tested left out" in page


def test_a_legend_of_long_labels_takes_fewer_columns_and_stays_within_its_figure():
    from matplotlib.lines import Line2D

    from nncompress.report.figures import canvas
    from nncompress.report.style import legend_below

    for label, columns in (("magl1", {4}), ("ConvNet front (convnet_dataset.val_size=5000, a long variant)", {1, 2, 3})):
        fig, _ = canvas()
        legend = legend_below(fig, [Line2D([], [], label=f"{label} {i}") for i in range(9)])
        renderer = fig.canvas.get_renderer()
        assert legend._ncols in columns and legend.get_window_extent(renderer).width <= fig.bbox.width
        assert len(fig.legends) == 1  # the wider tries are gone
