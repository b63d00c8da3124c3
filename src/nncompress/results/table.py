"""The table a run prints at its end."""
from tabulate import tabulate


def format_table(records: list[dict]) -> str:
    """One line per replica: seed, ratio, accuracies in percent (as the sweep's table), non-zero weights and
    parameters (real weights + biases)."""
    mixed = len({r["dataset"] for r in records}) > 1
    rows = [[(f"{r['dataset']} " if mixed else "") + f"seed={r['seed']} ratio={r['ratio']:g}", 100 * r["test_acc"],
             100 * r["train_acc"], f"{r['nonzero_weights']}/{r['total_weights']}", r["parameters"]] for r in records]  # fmt: skip
    return tabulate(rows, ["replica", "test acc (%)", "train acc (%)", "non-zero weights", "parameters"],
                    floatfmt=".2f", colalign=("left", "right", "right", "right", "right"))  # fmt: skip
