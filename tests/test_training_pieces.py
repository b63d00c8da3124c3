import math

import torch

from nncompress.compression.regularizers import L1, L2
from nncompress.models.factory import MLP
from nncompress.population import Population
from nncompress.training.metrics import ReplicaAccuracy
from nncompress.training.module import PopulationClassifier, chance
from nncompress.training.protocol import Protocol
from nncompress.training.step import lr_factor


def test_regularized_sgd_step_is_the_authors_update():
    lam, n, lr = 1.0, 500, 0.3
    for regularizer, derivative in ((L2, lambda w: w), (L1, torch.sign)):
        w = torch.randn(3, 4, 5, requires_grad=True)
        w.grad = torch.randn_like(w)
        expected = w.detach() - lam * lr * derivative(w.detach()) / n - lr * w.grad
        regularizer(lam / n).add_to(w.grad, w)
        torch.optim.SGD([w], lr=lr).step()
        torch.testing.assert_close(w.detach(), expected)


def test_learning_rate_schedules_on_the_device_match_their_formulas():
    steps, total = 500, 1000
    factor = lambda schedule, step: float(lr_factor(schedule, torch.tensor(step), steps, total))  # noqa: E731
    assert factor("inv_sqrt", 0) == 2.0 and factor("inv_sqrt", steps - 1) == 2.0  # epoch j = 1 (per epoch)
    assert math.isclose(factor("inv_sqrt", 3 * steps), 2.0 / math.sqrt(4))  # epoch j = 4
    for step in (0, 1, 333, 999, 1000, 1500):
        assert math.isclose(factor("cosine", step), 0.5 * (1 + math.cos(math.pi * min(step, total) / total)), abs_tol=1e-12)
    assert factor("constant", 777) == 1.0


def test_replica_accuracy_accumulates_per_replica():
    m = ReplicaAccuracy(2)
    logits = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])  # (R=2, B=2, C=2)
    m.update(logits, torch.tensor([0, 0]))
    m.update(logits[:, :1], torch.tensor([1]))
    torch.testing.assert_close(m.compute(), torch.tensor([2 / 3, 2 / 3]))


def test_chance_level_is_the_commonest_class_share_of_the_labels_each_replica_reads():
    from collections import Counter

    y = torch.tensor([[0, 1, 2, 3, 3, 3, 4, 5], [7, 7, 1, 2, 3, 4, 5, 6]])  # dataset 0: 3/8 are 3s; dataset 1: 2/8 7s
    streams = torch.tensor([1, 0, 1])
    expected = [max(Counter(y[d].tolist()).values()) / 8 for d in streams.tolist() for _ in range(2)]
    torch.testing.assert_close(chance(y, streams, per_stream=2), torch.tensor(expected))


def test_a_replica_trained_to_no_better_than_chance_is_flagged_as_having_learned_nothing():
    population = Population.grid([0, 1], [1.0, 0.5])
    module = PopulationClassifier(MLP(hidden=3).build(population, 4, Protocol()), population, Protocol(), epochs=1)
    module.chance = torch.tensor([0.2, 0.2, 0.2, 0.5])
    module.accuracy["train"] = torch.tensor([0.15, 0.2099, 0.2101, 0.505])  # at most chance + 1 point: learned nothing
    assert module.learned().tolist() == [False, False, True, False]


def test_benchmark_script_runs_and_reports_every_trainer(tmp_path):
    from conftest import ROOT, run_python

    bench = run_python(ROOT / "bench" / "population_speed.py", "--samples", "1000", "--replicas", "3", "--epochs", "1",
                       "--grid-samples", "200", "--precisions", "32-true,bf16-mixed", "--results", tmp_path)  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    out = bench.stdout
    for row in ("dense FLOP floor", "population R=3 ", "common random numbers", "population R=1 ", "naive Lightning",
                "plain PyTorch loop R=3 ", "precision bf16-mixed", "R=3, half frozen, all computed",
                "R=3, half frozen, frozen left out", "paper grid: ", "table6 R=160 H=30", "epochs: 450 (none stored)",
                "coded ms b=1000"):
        assert row in out


def test_grid_estimate_counts_the_epochs_a_population_leaving_out_its_frozen_replicas_computes():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench", ROOT / "bench" / "population_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # all four computed for 2 epochs, then the two left alone for 8: 24 replica-epochs
    assert bench.computed_epochs([10, 10, 2, 2]) == 24 / 4
    # three still training at epoch 3 (more than half: all four computed), one from epoch 4: 4 * 4 + 1 + 1
    assert bench.computed_epochs([6, 4, 4, 3]) == 18 / 4
    assert bench.computed_epochs([7, 7, 7]) == 7
