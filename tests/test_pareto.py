import json

import pandas as pd

from nncompress import load_results
from nncompress.pareto import pareto_front, settings
from nncompress.results import config_key


def test_pareto_front_on_a_hand_made_table():
    table = pd.DataFrame(
        {"name": list("abcdefg"),
         "parameters": [100, 200, 200, 300, 50, 400, 300],
         "val_acc":    [0.90, 0.95, 0.93, 0.95, 0.80, 0.97, 0.96]}  # fmt: skip
    )
    front = pareto_front(table)
    # c is beaten by b (same size, more accurate); d by b (same accuracy, smaller); g survives (0.96 > 0.95)
    assert front["name"].tolist() == ["e", "a", "b", "g", "f"]
    tie = pd.DataFrame({"parameters": [10, 10], "val_acc": [0.5, 0.5]})
    assert len(pareto_front(tie)) == 2  # equal points do not dominate each other


def test_settings_average_seeds_from_results_files(tmp_path):
    rows = [
        {"key": config_key({"k": k, "s": s}), "seed": s, "ratio": 1.0, "dataset": "mnist", "source": "original", "parameters": 1000 + k,
         "val_acc": 0.9 + 0.01 * s + k / 1000, "test_acc": 0.8 + 0.01 * s,
         "config": {"model": {"name": "convnet", "kernel": 5, "channels": 4 + k, "stride": 1, "pool": 2,
                              "dropout": 0.0}, "dataset": {"name": "mnist"},
                    "method": {"name": "none"}, "protocol": {"name": "convnet"}}}
        for k in (0, 8) for s in (0, 1)
    ]  # fmt: skip
    for i, chunk in enumerate((rows[:2], rows[2:])):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chunk))
    table = settings(load_results(tmp_path))
    assert table["seeds"].tolist() == [2, 2] and table["model.channels"].tolist() == [4, 12]
    assert table["val_acc"].round(4).tolist() == [0.905, 0.913] and table["parameters"].tolist() == [1000, 1008]
    assert table["test_acc_std"].round(5).tolist() == [0.00707, 0.00707]
