"""The report in bytes (issue 44): each method and combination labelled once, the Pareto frontier over all of them,
the best at each byte budget, the published anchors, the figure and the page's section; on constructed records."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from nncompress import load_results
from nncompress.replicas import combination, net
from nncompress.report import ondisk
from nncompress.report.paper import REFERENCE

from conftest import NamedStore
from test_report import fake_record

# Cells on MNIST, protocol fast, two seeds each: (method, model, quantized bits, ratio) -> (accuracies, bytes)
CELLS = {
    ("magl1", "mlp", 5, 0.002): ((0.89, 0.90), (900, 900)),  # 89.5 % at 900 B
    ("magl1", "hashednet", None, 0.01): ((0.90, 0.91), (1500, 1500)),  # a pruned HashedNet: 90.5 %
    ("magl1", "mlp", 5, 0.01): ((0.949, 0.955), (1900, 1900)),  # 95.2 %
    ("magl1", "mlp", None, 0.002): ((0.90, 0.92), (2500, 2600)),  # 91.0 % at 2,550 B (mean)
    ("none", "hashednet", None, 0.01): ((0.92, 0.93), (3300, 3300)),  # 92.5 %
    ("magl1", "mlp", None, 0.01): ((0.95, 0.96), (6300, 6300)),  # 95.5 %
    ("obd", "mlp", None, 0.01): ((0.94, 0.95), (6300, 6300)),  # 94.5 %
    ("magl1", "mlp", None, 0.1): ((0.975, 0.98), (32_000, 32_000)),  # 97.75 %, exactly 32 KB: fits
    ("magl1", "mlp", 6, 0.1): ((0.98, 0.98), (32_001, 32_001)),  # 98.0 %, a byte over 32 KB
}
NAMES = {("magl1", "mlp", 5): "magl1+k5", ("magl1", "hashednet", None): "hashednet+magl1", ("magl1", "mlp", None): "magl1",
         ("none", "hashednet", None): "hashednet", ("obd", "mlp", None): "obd", ("magl1", "mlp", 6): "magl1+k6"}  # fmt: skip


KMEANS = "nncompress.compression.quantization.KMeans"


def record(method, model, bits, ratio, seed, acc, nbytes=None, dataset="mnist"):
    r = fake_record(method, 100, dataset, ratio, seed, acc)
    r["key"] += f"-{model}-{bits}"
    r["config"]["model"]["name"] = model
    if bits is not None:
        r["config"]["quantize"] = {"_target_": KMEANS, "name": "kmeans", "bits": bits, "epochs": 2}
    return r | ({} if nbytes is None else {"artefact_bytes": nbytes})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    store = NamedStore(tmp_path_factory.mktemp("store"))
    for (method, model, bits, ratio), (accs, sizes) in CELLS.items():
        for seed, (acc, nbytes) in enumerate(zip(accs, sizes)):
            store.put(record(method, model, bits, ratio, seed, acc, nbytes))
    for seed in (0, 1):
        store.put(record("magl1", "mlp", None, 0.01, seed, 0.80, 6300, dataset="mnist_rot"))
        store.put(record("magl1", "mlp", None, 0.01, seed + 5, 0.99))  # no artefact: not in the bytes views
    return load_results(store.root)


def config(method, model="mlp", quantize=None):
    return {"method": {"name": method}, "model": {"name": model, "hidden": 100}} | (
        {} if quantize is None else {"quantize": quantize})


def test_each_method_and_combination_has_one_label():
    assert combination(config("magl1")) == "magl1"
    assert combination(config("magl1", quantize={"_target_": KMEANS, "name": "kmeans", "bits": 5})) == "magl1+k5"
    assert combination(config("magl1", quantize={"_target_": None, "name": "none"})) == "magl1"  # `none`: unquantized
    assert combination(config("magl1", quantize=None)) == combination(config("magl1")) == "magl1"
    assert combination(config("none", "hashednet")) == "hashednet"
    assert combination(config("magl1", "hashednet")) == "hashednet+magl1"
    assert combination(config("obd", "hashednet", {"_target_": KMEANS, "name": "kmeans", "bits": 4})) == "hashednet+obd+k4"
    assert combination(config("none")) == "dense" and combination(config("none", quantize={"_target_": KMEANS, "name": "kmeans", "bits": 6})) == "dense+k6"
    assert combination(config("none", "convnet")) == "convnet"
    assert [net({"hidden": [300, 100]}), net({"hidden": 100}), net({"hidden": [50]}), net({"kernel": 5})] == [
        "h300-100", "h100", "h50", ""]  # fmt: skip


def test_load_results_labels_every_replica(runs):
    mnist = runs[(runs["dataset"] == "mnist") & runs["bytes"].notna()]
    labels = {(m, model, None if pd.isna(b) else int(b)) for m, model, b in
              zip(mnist["method"], mnist["model"], mnist.get("quantize.bits", pd.Series(np.nan, index=mnist.index)))}  # fmt: skip
    assert labels == set(NAMES)
    for key, name in NAMES.items():
        bits = mnist.get("quantize.bits", pd.Series(np.nan, index=mnist.index))
        rows = mnist[(mnist["method"] == key[0]) & (mnist["model"] == key[1])
                     & (bits.isna() if key[2] is None else bits.eq(key[2]))]  # fmt: skip
        assert set(rows["combination"]) == {name} and set(rows["net"]) == {"h100"}
    # a quantized replica is a variant of its own everywhere else, but meets its unquantized twin in the bytes views
    quantized = mnist["combination"].str.contains(r"\+k")
    assert set(mnist.loc[quantized, "protocol"]).isdisjoint(mnist.loc[~quantized, "protocol"])
    assert set(mnist["base"]) == {"fast"} and set(ondisk.byte_cells(mnist)["protocol"]) == {"fast"}


def test_the_frontier_over_every_method_and_combination_is_the_hand_list(runs):
    cells = ondisk.byte_cells(runs)
    front = ondisk.frontier(cells)
    mnist = front[front["dataset"] == "mnist"]
    # dominated: magl1 at 0.002 (91.0 % in 2,550 B) and the HashedNet (92.5 % in 3,300 B) by magl1+k5 at 0.01 (95.2 %
    # in 1,900 B); obd (94.5 %) by magl1 in the same 6,300 B (95.5 %)
    assert [(c, r, b) for c, r, b in zip(mnist["combination"], mnist["ratio"], mnist["bytes"])] == [
        ("magl1+k5", 0.002, 900), ("hashednet+magl1", 0.01, 1500), ("magl1+k5", 0.01, 1900), ("magl1", 0.01, 6300),
        ("magl1", 0.1, 32_000), ("magl1+k6", 0.1, 32_001)]  # fmt: skip
    assert np.allclose(mnist["acc"], [89.5, 90.5, 95.2, 95.5, 97.75, 98.0])
    assert front[front["dataset"] == "mnist_rot"]["bytes"].tolist() == [6300]
    magl1 = cells[(cells["combination"] == "magl1") & (cells["ratio"] == 0.002)].iloc[0]
    assert magl1["bytes"] == 2550 and magl1["n"] == 2 and np.isclose(magl1["std"], np.std([90, 92], ddof=1))


def test_the_best_at_each_byte_budget_is_the_hand_computation(runs):
    best = ondisk.best_at_budgets(ondisk.byte_cells(runs))
    mnist = best[best["dataset"] == "mnist"].set_index("budget")
    assert mnist.index.tolist() == [1000, 2000, 4000, 8000, 16_000, 32_000]
    pick = lambda side: [None if pd.isna(c) else (c, r) for c, r in zip(mnist[f"{side}_combination"], mnist[f"{side}_ratio"])]  # noqa: E731
    assert pick("best") == [("magl1+k5", 0.002), ("magl1+k5", 0.01), ("magl1+k5", 0.01), ("magl1", 0.01),
                            ("magl1", 0.01), ("magl1", 0.1)]  # 32,001 B does not fit 32 KB; 32,000 does
    # the runner-up is another combination: none under 1 KB, magl1+k5's own other cell is never it
    assert pick("runner_up") == [None, ("hashednet+magl1", 0.01), ("hashednet", 0.01), ("magl1+k5", 0.01),
                                 ("magl1+k5", 0.01), ("magl1+k5", 0.01)]  # fmt: skip
    row = mnist.loc[32_000]
    assert np.isclose(row["best_acc"], 97.75) and np.isclose(row["best_std"], np.std([97.5, 98.0], ddof=1))
    assert row["best_bytes"] == 32_000 and row["best_n"] == 2 and row["best_net"] == "h100"
    rot = best[best["dataset"] == "mnist_rot"]
    assert rot["best_combination"].isna().tolist() == [True, True, True, False, False, False]
    markdown = ondisk.budget_table(mnist.reset_index()).markdown()
    assert ("| 2 KB | magl1+k5 h100, ratio 0.01 | 95.20 ± 0.42 (n=2) | 1,900 | hashednet+magl1 h100, ratio 0.01 "
            "| 90.50 ± 0.71 (n=2) | 1,500 |") in markdown  # fmt: skip
    assert "| 1 KB | magl1+k5 h100, ratio 0.002 | 89.50 ± 0.71 (n=2) | 900 | — | — | — |" in markdown


def test_our_best_within_each_anchors_bytes(runs):
    anchors = ondisk.anchored(ondisk.byte_cells(runs)).set_index("anchor")
    assert set(anchors["dataset"]) == {"mnist"}  # the anchors are on MNIST: nothing for mnist_rot
    deep = anchors.loc["Deep Compression"]  # 27,000 B at 98.42 %: our best within it, magl1 at 0.01 (95.5 %)
    assert (deep["anchor_bytes"], deep["anchor_acc"], deep["combination"], deep["ratio"]) == (27_000, 98.42, "magl1", 0.01)
    assert np.isclose(deep["diff"], 95.5 - 98.42)
    alone = anchors.loc["pruning alone"]  # 1,070 KB / 12 = 89,167 B: magl1+k6 at 0.1 fits
    assert alone["anchor_bytes"] == 89_167 and alone["combination"] == "magl1+k6" and np.isclose(alone["diff"], 98.0 - 98.41)


def test_the_bytes_figure_draws_every_combination_the_frontier_and_the_anchors(runs):
    from nncompress.report.figures import size_plot
    from nncompress.report.style import styles

    fig = size_plot(runs, "bytes", "mnist", "fast", styles(runs))
    ax = fig.axes[0]
    curves = {c.get_label(): c.lines[0] for c in ax.containers}
    assert set(curves) == {f"{name}, h100" for name in NAMES.values()}
    marks = {label: (to_hex(line.get_color()), line.get_marker()) for label, line in curves.items()}
    assert marks["magl1, h100"] == (to_hex("tab:blue"), "o") and marks["magl1+k5, h100"] == (to_hex("tab:blue"), "$k5$")
    assert marks["hashednet, h100"] == (to_hex("tab:purple"), "D")
    assert marks["hashednet+magl1, h100"] == (to_hex("tab:purple"), "o")  # HashedNet's colour, MagL1's marker
    assert list(curves["magl1, h100"].get_xdata()) == [2550, 6300, 32_000]  # mean bytes, one point per ratio
    lines = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    assert list(lines["Pareto frontier"].get_xdata()) == [900, 1500, 1900, 6300, 32_000, 32_001]
    assert (list(lines["Deep Compression"].get_xdata()), list(lines["Deep Compression"].get_ydata())) == ([27_000], [98.42])
    assert {t.get_text().split("\n")[0] for t in ax.texts} == {"Deep Compression", "pruning alone"}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:6] == ["magl1", "magl1+k5", "magl1+k6", "obd", "HashedNet", "hashednet+magl1"]
    assert "Pareto frontier over every method and combination" in legend and "h100" in legend


def test_the_figure_is_written_once_and_summary_and_page_hold_the_budgets_only_with_artefacts(runs, tmp_path):
    from nncompress.report.figures import write_figures
    from nncompress.report.page import write_html
    from nncompress.report.summary import write_summary

    reference, runs = pd.read_csv(REFERENCE), runs[runs["dataset"] == "mnist"]  # fewer figures to draw
    drawn, missing = write_figures(runs, reference, tmp_path)
    assert [p.name for p in tmp_path.glob("bytes_*.png")] == ["bytes_mnist_fast.png"]  # once, no other in bytes
    assert [p.name for _, p in drawn if p.name.startswith("bytes_")] == ["bytes_mnist_fast.png"]
    assert not [line for line in missing if "bytes" in line]
    summary = write_summary(runs, tmp_path).read_text()
    section = summary.split("## Best at each byte budget")[1]
    assert "1 KB = 1,000 bytes" in section and "### mnist, protocol fast" in section and "### Anchors" in section
    assert "| 32 KB | magl1 h100, ratio 0.1 | 97.75 ± 0.35 (n=2) | 32,000 |" in section
    assert "| Deep Compression | 98.42 | 27,000 | fast | magl1 h100, ratio 0.01 | 95.50 ± 0.71 (n=2) | 6,300 | -2.92 |" in section
    page = write_html(runs, tmp_path, reference, drawn, [tmp_path]).read_text()
    assert '<li><a href="#budgets">Best at each byte budget</a></li>' in page and '<h2 id="budgets">' in page
    assert "magl1+k5 h100, ratio 0.01" in page and "<h3>Anchors</h3>" in page
    assert page.count('alt="bytes_mnist_fast"') == 1
    without = runs[runs["bytes"].isna()]
    page = write_html(without, tmp_path, reference, [], [tmp_path]).read_text()
    assert 'id="budgets"' not in page and "the best at each byte budget (no artefacts)" in page
    assert ondisk.markdown(without)[-1] == "Not drawn: no stored replica has an artefact (train with `export=true`)."


def test_a_deeper_net_takes_the_line_style_after_the_one_layer_nets():
    from nncompress.report.style import styles

    runs = pd.DataFrame({"role": "pruned", "model": "mlp", "method": "magl1", "protocol": "fast", "ratio": 0.1,
                         "hidden": pd.array([100, 50, None], dtype="Int64"), "net": ["h100", "h50", "h300-100"]})  # fmt: skip
    looks = styles(runs)
    assert looks.nets == {"h100": "-", "h50": "--", "h300-100": "-."}
    assert [looks.nets[f"h{h}"] for h in (100, 50)] == [looks.lines[100], looks.lines[50]]  # as on Figures 2-5
