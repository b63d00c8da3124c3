import ast
import math

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from nncompress.compression.host import PruningHost
from nncompress.compression.masks import prune_masks
from nncompress.compression.pruning import Pruning
from nncompress.compression.regularizers import L1, L2
from nncompress.compression.saliency import OBD, Magnitude
from nncompress.compression.schedules import CubicSchedule, PowerSchedule, Timing
from nncompress.data.datasets import Splits
from nncompress.data.module import EvalBatches, PopulationData
from nncompress.errors import UserError
from nncompress.models.hashednet import HashedPopulationMLP
from nncompress.training.checkpoint import Checkpoints
from nncompress.training.module import PopulationClassifier
from nncompress.training.pruning import PruningCallback

from conftest import ROOT
from test_population_model import make

FAST = OmegaConf.load(ROOT / "conf" / "protocol" / "fast.yaml")


@pytest.mark.parametrize("schedule", [PowerSchedule(15, 16), CubicSchedule(15), PowerSchedule(4, 1)])
@pytest.mark.parametrize("target", [0.0, 0.5, 0.998])
def test_schedule_is_monotone_and_hits_the_target_at_step_k(schedule, target):
    fractions = [schedule.fraction(i, target) for i in range(schedule.steps + 1)]
    assert fractions[0] == 0 and fractions[-1] == pytest.approx(target, abs=1e-15)
    assert all(a <= b for a, b in zip(fractions, fractions[1:]))


def test_power_schedule_front_loads():
    s = PowerSchedule(15, 16)
    assert s.fraction(1, 1.0) == pytest.approx(15 ** (-1 / 16))  # about 84 % of the target at the first step
    assert CubicSchedule(15).fraction(1, 1.0) == pytest.approx(1 - (14 / 15) ** 3)


@pytest.mark.parametrize("ratio", [1.0, 0.5, 0.01, 0.002])
def test_achieved_ratio_matches_target(ratio):
    sizes = [(784, 100), (100, 10)]
    scores = [torch.rand(3, *s) for s in sizes]
    masks = [torch.ones(3, *s, dtype=torch.bool) for s in sizes]
    total = sum(a * b for a, b in sizes)
    fractions = torch.full((3,), 1.0 - ratio, dtype=torch.float64)
    kept = sum(m.sum((1, 2)) for m in prune_masks(scores, masks, fractions, "global"))
    assert (kept == round(ratio * total)).all()
    layer = prune_masks(scores, masks, fractions, "layer")
    for m, (a, b) in zip(layer, sizes):
        assert ((m.sum((1, 2)) - ratio * a * b).abs() <= 1).all()  # within one weight per layer


def test_global_and_layer_scope_rank_as_specified():
    big, small = torch.full((1, 4, 5), 10.0), torch.full((1, 5, 2), 1.0)  # 20 + 10 weights
    big[0, 0, 0] = 0.5  # the single lowest score overall
    masks = [torch.ones_like(big, dtype=torch.bool), torch.ones_like(small, dtype=torch.bool)]
    g = prune_masks([big, small], masks, torch.tensor([11 / 30]), "global")  # remove 11 of 30
    assert (~g[0]).sum() == 1 and not g[0][0, 0, 0] and (~g[1]).sum() == 10  # lowest first, across layers
    lay = prune_masks([big, small], masks, torch.tensor([0.4]), "layer")  # 40 % of each layer
    assert (~lay[0]).sum() == 8 and (~lay[1]).sum() == 4 and not lay[0][0, 0, 0]


def test_removed_weights_stay_removed_even_with_higher_scores():
    s = torch.arange(10.0).view(1, 2, 5)
    first = prune_masks([s], [torch.ones(1, 2, 5, dtype=torch.bool)], torch.tensor([0.3]))[0]
    second = prune_masks([s.flip(-1)], [first], torch.tensor([0.5]))[0]
    assert not (second & ~first).any() and (~second).sum() == 5


def test_obd_saliency_is_w2_times_hessian():
    torch.manual_seed(0)
    _, model = make([0, 1], [1.0], False, "sigmoid", "paper", sizes=(6, 5, 4))
    x, y = torch.randn(20, 6), torch.randint(0, 4, (20,))
    from nncompress.compression.hessian import hessian_diagonal

    batches = EvalBatches(x, y, 7)
    h = hessian_diagonal(model, batches, "mse")
    w = model.layers[0].replica_weight()
    torch.testing.assert_close(OBD("abs").scores(model, batches, "mse", [0, 1])[0], w**2 * h[0].abs())
    torch.testing.assert_close(OBD("exact").scores(model, batches, "mse", [0, 1])[0], 0.5 * w**2 * h[0])
    torch.testing.assert_close(Magnitude().scores(model, batches, "mse", [0, 1])[0], w.abs())


def test_obd_at_first_step_keeps_each_replicas_first_hessian():
    torch.manual_seed(0)
    _, model = make([0, 1, 2], [1.0], False, "sigmoid", "paper", sizes=(6, 5, 4))
    x, y = torch.randn(20, 6), torch.randint(0, 4, (20,))
    from nncompress.compression.hessian import hessian_diagonal

    batches = EvalBatches(x, y, 7)
    first = hessian_diagonal(model, batches, "mse")
    once, each = OBD("abs", "first_step"), OBD("abs", "each_step")
    once.scores(model.subset(torch.tensor([0, 2])), batches, "mse", [0, 2])  # replicas 0, 2 take their first step
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(1.5).add_(0.1)  # training moves the weights: the Hessian changes
    now = hessian_diagonal(model, batches, "mse")
    assert not torch.allclose(now[0], first[0])
    got = once.scores(model, batches, "mse", [0, 1, 2])  # replica 1's first step, 0 and 2's second
    for i, layer in enumerate(model.layers):
        w2 = layer.replica_weight() ** 2
        kept = torch.stack([first[i][0], now[i][1], first[i][2]])
        torch.testing.assert_close(got[i], w2 * kept.abs())
        torch.testing.assert_close(each.scores(model, batches, "mse", [0, 1, 2])[i], w2 * now[i].abs())


def test_compression_imports_neither_training_nor_lightning():
    """compression/ sits below training/: what pruning needs from a training comes through host.PruningHost."""
    for path in sorted((ROOT / "src" / "nncompress" / "compression").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                names = [base + ("" if base.endswith(".") else ".") + alias.name for alias in node.names]
            else:
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            assert not [n for n in names if n.startswith(("..training", "nncompress.training", "pytorch_lightning",
                                                          "lightning"))], f"{path.name} imports {names}"  # fmt: skip


PAPER_TIMING = Timing(first_epoch=50, every=25, threshold=0.96, final_epochs=50)  # conf/pruning/paper.yaml
NEVER = -(10**9)  # the last step of a replica that has taken none


@pytest.mark.parametrize("epoch, pruning, last_step, accuracy, triggered, due", [
    (49, True, NEVER, 0.99, False, False),  # no step before first_epoch, however accurate
    (50, True, NEVER, 0.10, False, True),  # the first step at first_epoch, whatever the accuracy: the cap
    (51, True, 50, 0.97, True, True),  # the trigger: the threshold reached
    (51, True, 50, 0.96, True, True),  # reached exactly
    (51, True, 50, 0.95, True, False),
    (74, True, 50, math.nan, True, False),  # not measured: never fires
    (75, True, 50, 0.10, False, True),  # the cap: 25 epochs after the last step, whatever the accuracy
    (75, False, 50, 0.99, False, False),  # all steps taken (or frozen)
])  # fmt: skip
def test_timing_fires_steps_as_the_papers_timing_says(epoch, pruning, last_step, accuracy, triggered, due):
    args = epoch, torch.tensor([pruning]), torch.tensor([last_step])
    assert PAPER_TIMING.triggered(*args).tolist() == [triggered]  # whose accuracy must be measured
    assert PAPER_TIMING.due(*args, torch.tensor([accuracy])).tolist() == [due]


def test_timing_without_a_threshold_fires_at_the_cap_only_and_bounds_the_run():
    t = Timing(first_epoch=50, every=25, threshold=None, final_epochs=50)
    pruning, last = torch.tensor([True, True]), torch.tensor([50, 50])
    assert not t.triggered(60, pruning, last).any()
    assert t.due(60, pruning, last, torch.tensor([0.99, math.nan])).tolist() == [False, False]
    assert t.due(75, pruning, last, torch.tensor([0.10, math.nan])).tolist() == [True, True]
    assert PAPER_TIMING.max_epochs(15) == t.max_epochs(15) == 50 + 14 * 25 + 50  # the paper's 450 epochs at most


def test_timing_ends_the_final_phase_after_final_epochs_or_just_past_a_peak():
    assert PAPER_TIMING.final_end(torch.tensor([120, 400])).tolist() == [170, 450]
    assert PAPER_TIMING.peak_split is None
    peaks = Timing(first_epoch=50, every=25, threshold=0.96, final_epochs=50, final="test_peak")
    assert peaks.peak_split == "test"
    now, before = torch.tensor([0.90, 0.95, 0.94, math.nan]), torch.tensor([0.91, 0.94, 0.94, 0.90])
    assert peaks.past_peak(now, before).tolist() == [True, False, True, False]  # fell, rose, stood, not measured


class ToyHost(PruningHost):
    """A population pruned without Lightning or a training step: scripted training accuracies, the masks in the
    layers, and what pruning asked of it."""

    def __init__(self, model, accuracy: torch.Tensor):
        self.model, self.loss_name, self.accuracy = model, "cross_entropy", accuracy
        self.data = torch.randn(30, model.layers[0].in_features), torch.randint(0, 3, (30,))
        self.trained, self.logged = [], []

    def eval_batches(self, split, index):
        return EvalBatches(*self.data, 10)

    def subset_accuracy(self, split, index):
        return self.accuracy[index]

    def masks(self):
        return [layer.replica_mask().clone() for layer in self.model.layers]

    def set_masks(self, masks):
        for layer, mask in zip(self.model.layers, masks):
            layer.set_replica_mask_(mask)

    def train_only(self, active):
        self.trained.append(active.tolist())

    def log_metrics(self, metrics, epoch):
        self.logged.append((epoch, metrics))


def test_pruning_reaches_the_population_through_its_host_alone():
    """Replica 0 stays above the threshold (steps at epochs 2, 3, 4), replica 1 below it (steps at the cap: 2, 5,
    8); each is frozen `final_epochs` after its last step, and the run is over once both are."""
    pop, model = make([0], [0.5, 0.1], False, sizes=(20, 16, 3))
    host = ToyHost(model, torch.tensor([0.95, 0.5]))
    timing = Timing(first_epoch=2, every=3, threshold=0.9, final_epochs=2)
    pruning = Pruning(Magnitude(), PowerSchedule(3, 2), timing, pop)
    for epoch in range(10):
        pruning.epoch_start(host, epoch)
        assert pruning.finished(epoch + 1) == (epoch == 9)
    assert [(e["replica"], e["epoch"]) for e in pruning.history] == [
        (pop.replicas[0].name, 2), (pop.replicas[1].name, 2), (pop.replicas[0].name, 3), (pop.replicas[0].name, 4),
        (pop.replicas[1].name, 5), (pop.replicas[1].name, 8)]  # fmt: skip
    assert host.trained == [[False, True]]  # replica 0 frozen at epoch 6, replica 1 at 10 (after the run)
    kept = sum(m.sum((1, 2)) for m in host.masks()).tolist()
    assert kept == [round(0.5 * (20 * 16 + 16 * 3)), round(0.1 * (20 * 16 + 16 * 3))]
    assert [pruning.replica_summary(r, 10)["epochs"] for r in range(2)] == [6, 10]


class RegrowFirstInput(Magnitude):
    """Magnitude pruning whose every step brings back the first layer's weights from input 0 that an earlier step
    pruned (zero until then)."""

    def regrow(self, model, masks, batches, loss, replicas):
        first = masks[0].clone()
        first[:, 0] |= model.layers[0].replica_weight()[:, 0] == 0
        return [first, *masks[1:]]


def test_a_criterion_can_bring_pruned_weights_back():
    timing = Timing(first_epoch=1, every=1, threshold=None, final_epochs=2)  # steps at the start of epochs 1, 2, 3
    _, _, snaps = tiny_fit([0.5, 0.1], timing, saliency=RegrowFirstInput())
    before, after = snaps.weights[1], snaps.weights[2]  # after epoch 1 (the first step's), epoch 2 (the second's)
    pruned = before[:, 0] == 0
    assert pruned.any() and (after[:, 0][pruned] != 0).any()  # brought back by the second step, then trained
    assert (after[:, 1:][before[:, 1:] == 0] == 0).all()  # no other pruned weight came back


def test_a_saliency_that_is_no_criterion_is_refused():
    pop, _ = make([0], [0.5], False)
    with pytest.raises(UserError, match="no pruning criterion"):
        Pruning(object(), PowerSchedule(3, 2), PAPER_TIMING, pop)


class Snapshots(pl.Callback):
    """Weights of the first layer after every training epoch, and how many replicas the epoch computed."""

    def __init__(self):
        self.weights, self.trained = [], []

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights.append(pl_module.model.layers[0].replica_weight().detach().clone())
        part = pl_module.stepper.part
        self.trained.append(pl_module.model.replicas if part is None else len(part[0]))
        self.replica_epochs = pl_module.stepper.replica_epochs


def tiny_fit(ratios, timing, regularizer=None, saliency=None, crn=False, extra_callbacks=(), compact=True, seeds=(0,),
             max_epochs=None, checkpoint=None, resume=False, keep=None):  # fmt: skip
    """`max_epochs`: stop before pruning's end; `checkpoint`: where the job's state is saved after every epoch
    (training.checkpoint), and with `resume` resumed from; `keep`: a HashedNet instead, its ratios sizing its buckets,
    pruned to `keep` of them."""
    torch.manual_seed(0)
    pop, model = make(list(seeds), ratios, crn, "relu", "kaiming", sizes=(20, 16, 3))
    if keep is not None:
        model = HashedPopulationMLP(pop.streams, pop.per_stream, [20, 16, 3], "relu", [r.ratio for r in pop.replicas],
                                    [r.seed for r in pop.replicas])  # fmt: skip
        model.init_([torch.Generator().manual_seed(s) for s in pop.seeds("init")], "kaiming")
    x = torch.randn(400, 20)
    y = (x[:, :3].argmax(1)).long()  # learnable
    empty = torch.empty(0, 20), torch.empty(0, dtype=torch.long)
    data = PopulationData(Splits("toy", "synthetic", x, y, *empty, *empty), 20, pop.seeds("data"))
    pruning = Pruning(saliency or Magnitude(), PowerSchedule(3, 2), timing, pop, keep=keep or 1.0,
                      ratio_sizes_model=keep is not None)  # fmt: skip
    snaps = Snapshots()
    module = PopulationClassifier(model, pop, FAST, pruning.max_epochs, regularizer, compact=compact,
                                  restarts=pruning.saliency.restarts)  # fmt: skip
    saving = [Checkpoints(checkpoint, ["tiny"], 1e-9)] if checkpoint else []
    callbacks = [PruningCallback(pruning), snaps, *extra_callbacks, *saving]
    trainer = pl.Trainer(max_epochs=max_epochs or pruning.max_epochs, logger=False, callbacks=callbacks,
                         enable_progress_bar=False, enable_checkpointing=bool(saving), enable_model_summary=False,
                         limit_val_batches=0)  # fmt: skip
    trainer.fit(module, datamodule=data, ckpt_path=checkpoint if resume else None, weights_only=True)
    return model, pruning, snaps


@pytest.mark.parametrize("regularizer", [None, L1(0.05), L2(0.05)])
def test_masks_survive_momentum_and_regularizers(regularizer):
    timing = Timing(first_epoch=1, every=1, threshold=None, final_epochs=6)  # 3 steps, then 120 steps of training
    model, pruning, snaps = tiny_fit([0.5, 0.1], timing, regularizer)
    for layer in model.layers:
        w, m = layer.replica_weight(), layer.replica_mask()
        assert torch.equal(w[~m], torch.zeros_like(w[~m]))  # bit-exactly zero
        assert (w[m] != 0).all()
    # the pruned set after the last step (end of epoch 3) is the same at the very end
    assert torch.equal(snaps.weights[3] == 0, snaps.weights[-1] == 0)
    assert not torch.equal(snaps.weights[3], snaps.weights[-1])  # the kept weights kept training
    kept = [sum(int(layer.replica_mask()[r].sum()) for layer in model.layers) for r in range(2)]
    total = 20 * 16 + 16 * 3
    assert kept == [round(0.5 * total), round(0.1 * total)]
    assert [e["step"] for e in pruning.history] == [1, 1, 2, 2, 3, 3]


def test_replicas_trigger_on_their_own_accuracy_and_freeze_when_done():
    timing = Timing(first_epoch=1, every=3, threshold=0.9, final_epochs=2)
    model, pruning, snaps = tiny_fit([1.0, 0.002], timing)
    steps = {r: [e for e in pruning.history if e["ratio"] == r] for r in (1.0, 0.002)}
    for history in steps.values():
        assert len(history) == 3 and history[0]["epoch"] == timing.first_epoch
        assert all(0 <= e["train_acc_before"] <= 1 and 0 <= e["train_acc_after"] <= 1 for e in history)  # measured
        for prev, step in zip(history, history[1:]):
            gap = step["epoch"] - prev["epoch"]
            assert 1 <= gap <= timing.every
            assert gap == timing.every or step["train_acc_before"] >= timing.threshold  # early only when accurate
    assert [e["epoch"] for e in steps[1.0]] != [e["epoch"] for e in steps[0.002]]  # each on its own accuracy
    ends = [history[-1]["epoch"] + timing.final_epochs for history in steps.values()]
    first, last = (0, 1) if ends[0] < ends[1] else (1, 0)
    assert pruning.replica_summary(first, len(snaps.weights))["epochs"] == ends[first]
    for r, history in enumerate(steps.values()):
        assert pruning.replica_summary(r, len(snaps.weights))["last_pruning_epoch"] == history[-1]["epoch"]
    assert torch.equal(snaps.weights[ends[first] - 1][first], snaps.weights[-1][first])  # frozen once done
    assert not torch.equal(snaps.weights[ends[first] - 1][last], snaps.weights[-1][last])  # the other trains on
    assert len(snaps.weights) == ends[last]  # the run stops when the last replica is done


@pytest.mark.parametrize("crn", [False, True])
def test_replicas_done_early_are_no_longer_computed_and_nothing_else_changes(crn):
    """Four replicas stepping on their own accuracies end at different epochs; once at most half of those trained
    are left, only they are computed. Steps, epochs and weights are those of the run computing all four."""
    timing = Timing(first_epoch=1, every=3, threshold=0.98, final_epochs=4)
    ratios = [1.0, 0.5, 0.05, 0.002]
    runs = [tiny_fit(ratios, timing, L1(0.01), crn=crn, compact=compact) for compact in (True, False)]
    (model, pruning, snaps), (model_all, pruning_all, snaps_all) = runs
    assert snaps_all.trained == [4] * len(snaps_all.trained)
    assert snaps.trained[-2] < 4 and snaps.trained == sorted(snaps.trained, reverse=True), snaps.trained
    assert (snaps.replica_epochs, snaps_all.replica_epochs) == (sum(snaps.trained), 4 * len(snaps.trained))
    assert [(e["replica"], e["epoch"]) for e in pruning.history] == [(e["replica"], e["epoch"]) for e in pruning_all.history]
    assert [pruning.replica_summary(r, len(snaps.weights)) for r in range(4)] == [
        pruning_all.replica_summary(r, len(snaps_all.weights)) for r in range(4)]  # fmt: skip
    for a, b in zip(model.parameters(), model_all.parameters()):
        torch.testing.assert_close(a, b)


class TrainAccuracy(pl.Callback):
    """Every replica's training accuracy at the start of each epoch, computed apart from the pruning callback."""

    def __init__(self):
        self.at_start = []

    def on_train_epoch_start(self, trainer, pl_module):
        x, y = trainer.datamodule.data["train"]
        self.at_start.append((pl_module.model(x[0]).argmax(-1) == y[0]).float().mean(1))


def test_final_phase_ends_each_replica_just_past_its_training_accuracy_peak():
    timing = Timing(first_epoch=1, every=1, threshold=None, final_epochs=40, final="train_peak")
    acc = TrainAccuracy()
    model, pruning, snaps = tiny_fit([0.5, 0.05], timing, extra_callbacks=[acc])
    for r in range(2):
        last = max(e["epoch"] for e in pruning.history if e["ratio"] == [0.5, 0.05][r])
        series = [float(a[r]) for a in acc.at_start]
        # the first epoch after the last step whose accuracy is no higher than the epoch before
        end = next(e for e in range(last + 2, len(series)) if series[e] <= series[e - 1])
        assert pruning.replica_summary(r, len(snaps.weights))["epochs"] == end < last + timing.final_epochs
        assert torch.equal(snaps.weights[end - 1][r], snaps.weights[-1][r])  # frozen from then on
        assert not torch.equal(snaps.weights[end - 2][r], snaps.weights[end - 1][r])  # trained until then


def authors_steps(accuracy: list[float], first_epoch: int, every: int, threshold: float, steps: int) -> list[int]:
    """The pruning steps of the authors' loop (iterative_pruing_NN.SGD), as epochs trained before each, given
    `accuracy[j]`, the training accuracy at the start of our epoch j (after its step, if any). Their epoch j
    (from 1) measures the accuracy, trains, then prunes if that accuracy reached the threshold or `every` epochs
    passed since the last step (counted from 0), never while waiting the first `first_epoch` epochs."""
    done, last = [], 0
    for j in range(1, len(accuracy)):  # their prune after epoch j is our step at the start of epoch j
        if len(done) < steps and (accuracy[j - 1] >= threshold or j - last >= every):
            if not (last == 0 and j < first_epoch):
                last = j
                done.append(j)
    return done


def test_lagged_trigger_prunes_when_the_authors_loop_would():
    timing = Timing(first_epoch=3, every=3, threshold=0.97, final_epochs=2, trigger_lag=1)
    acc = TrainAccuracy()  # after the pruning callback: measured after each epoch's steps
    ratios = [0.3, 0.002]
    _, pruning, snaps = tiny_fit(ratios, timing, extra_callbacks=[acc])
    for r, ratio in enumerate(ratios):
        series = [float(a[r]) for a in acc.at_start]
        steps = [e["epoch"] for e in pruning.history if e["ratio"] == ratio]
        assert steps == authors_steps(series, timing.first_epoch, timing.every, timing.threshold, 3)
    # The lag matters here: an epoch without a step whose own accuracy (no step changed it) reached the threshold.
    series = [float(a[0]) for a in acc.at_start]
    steps = [e["epoch"] for e in pruning.history if e["ratio"] == ratios[0]]
    assert any(series[e] >= timing.threshold for e in range(steps[0] + 1, steps[-1]) if e not in steps)


class Estimates(pl.Callback):
    """The pruning callback's (expected, latest) run length after every epoch."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_end(self, trainer, pl_module):
        callback = next(c for c in trainer.callbacks if isinstance(c, PruningCallback))
        self.seen.append(callback.pruning.end_estimate(trainer.current_epoch + 1))


def test_run_length_estimate_spaces_steps_as_observed_and_bounds_them_by_the_cap():
    """A trigger that always fires: steps at epochs 2, 3, 4, then 4 final epochs, so 8 epochs. Until a replica's
    second step the estimate spaces steps by the cap (2 + 2 x 5 + 4 = 16); after it, by the gap seen (1): 4 + 4 = 8,
    at most 3 + 5 + 4 = 12; after the last step, its known end."""
    timing = Timing(first_epoch=2, every=5, threshold=0.0, final_epochs=4)
    estimates = Estimates()
    _, pruning, snaps = tiny_fit([0.5, 0.1], timing, extra_callbacks=[estimates])
    assert [e["epoch"] for e in pruning.history] == [2, 2, 3, 3, 4, 4] and len(snaps.weights) == 8
    assert estimates.seen == [(16, 16)] * 3 + [(8, 12)] + [(8, 8)] * 4
