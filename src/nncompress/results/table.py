"""A run's replicas as the plain-text table it prints when it ends."""


def format_table(records: list[dict]) -> str:
    """One line per replica: seed, ratio, accuracies, non-zero weights and parameters (real weights + biases)."""
    mixed = len({r["dataset"] for r in records}) > 1
    width = 24 + mixed * max(len(r["dataset"]) + 1 for r in records)
    lines = [f"{'replica':<{width}} {'test acc':>8} {'train acc':>9} {'non-zero weights':>18} {'parameters':>10}"]
    for r in records:
        name = (f"{r['dataset']} " if mixed else "") + f"seed={r['seed']} ratio={r['ratio']:g}"
        kept = f"{r['nonzero_weights']}/{r['total_weights']}"
        lines.append(f"{name:<{width}} {r['test_acc']:>8.4f} {r['train_acc']:>9.4f} {kept:>18} {r['parameters']:>10}")
    return "\n".join(lines)
