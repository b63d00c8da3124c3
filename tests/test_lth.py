"""`method=lth` (compression/rewinding.py): iterative magnitude pruning that rewinds each replica after its steps, and
the training step's per-replica learning-rate schedule (training/step.py `restarts`) it needs."""
import json
import math
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from nncompress import config
from nncompress.compression.regularizers import L2
from nncompress.compression.rewinding import LotteryTicket
from nncompress.compression.schedules import Timing
from nncompress.errors import UserError
from nncompress.results import read_jsonl

from conftest import ROOT, run_train
from test_population_model import make
from test_pruning import FAST, tiny_fit
from test_step import BATCH, EPOCHS, PROTOCOLS, SIZES, SPE, population_step, separate_replicas


def cosine(position: int, total: int) -> float:
    return 0.5 * (1 + math.cos(math.pi * min(position, total) / total))


SCHEDULES = {"cosine": lambda s: cosine(s, SPE * EPOCHS), "inv_sqrt": lambda s: 2.0 / (s // SPE + 1) ** 0.5,
             "constant": lambda s: 1.0}  # fmt: skip


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_the_per_replica_sgd_gives_torch_optims_numbers_when_no_replica_restarts(name):
    """The step with a schedule per replica (`restarts`, its hand-written SGD) against the one torch.optim.SGD steps,
    every replica at the same place in the schedule: momentum (nesterov or not), weight decay, an L2 regularizer,
    masks set after the first epoch and replicas frozen after the second (the rest trained apart, the step
    compacted). Every weight and momentum entry equals torch's single-tensor SGD's bit for bit, and the fused one's
    (what runs without restarts) to float32 rounding: the fused kernel rounds a tensor's scalar tail apart from its
    SIMD body (fused multiply-adds), so a few entries differ in their last bit."""
    p, runs = PROTOCOLS[name], {}
    for restarts, fused in ((True, False), (False, False), (False, True)):
        pop, model = make([0, 1], [1.0, 0.5], False, p["activation"], "paper", SIZES)
        gen = torch.Generator().manual_seed(3)
        x, y = torch.randn(20, SIZES[0], generator=gen), torch.randint(0, SIZES[-1], (20,), generator=gen)
        step = population_step(model, L2(0.02), p["loss"], x=x, y=y, restarts=restarts, fused=fused, **p)
        for e in range(4):
            if e == 1:
                step.set_masks([torch.rand(pop.size, a, b, generator=gen) > 0.4 for a, b in zip(SIZES, SIZES[1:])])
            if e == 2:
                step.train_only(torch.tensor([True, False, False, True]))
            step.run_epoch(torch.stack([torch.randperm(20, generator=gen) for _ in range(pop.streams)]))
        assert step.part is not None  # compacted
        momentum = [step.optimizer.state[t]["momentum_buffer"] for t in model.parameters()] if p["momentum"] else []
        runs[restarts, fused] = [t.detach().clone() for t in [*model.parameters(), *momentum]]
    mine, single, fused = runs[True, False], runs[False, False], runs[False, True]
    assert len(mine) == len(single) == len(fused) == 4 * (2 if p["momentum"] else 1)
    for a, b, c in zip(mine, single, fused):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_restarted_replicas_train_as_torch_optim_restarted_on_its_own(name):
    """Before epoch 2, replica 1 restarts at epoch 0 and replica 2 at epoch 1 while replicas 0 and 3 go on, then
    stop (frozen: the restarted two train apart, the step compacted): the step's learning rates (read from it) are
    each one's own place in the schedule, and each replica's weights after the last epoch are those of its own
    nn.Linear net trained by torch.optim.SGD (its own momentum, nesterov and weight decay), whose restarted replicas
    got a new optimizer (momentum from zero) and a schedule starting from their epoch."""
    p = PROTOCOLS[name]
    pop, model = make([0, 1], [1.0, 0.5], False, p["activation"], "paper", SIZES)
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(20, SIZES[0], generator=gen), torch.randint(0, SIZES[-1], (20,), generator=gen)
    orders = [torch.stack([torch.randperm(20, generator=gen) for _ in range(pop.streams)]) for _ in range(EPOCHS)]
    nets = separate_replicas(model)
    step = population_step(model, None, p["loss"], x=x, y=y, restarts=True, **p)
    restarted = {1: 0, 2: 1}  # replica -> the epoch it restarts at, before epoch 2
    schedule = SCHEDULES[p["schedule"]]
    for e, order in enumerate(orders):
        if e == 2:
            for r, epoch in restarted.items():
                step.restart(torch.tensor([r]), epoch)
            step.train_only(torch.tensor([r in restarted for r in range(pop.size)]))
            assert step.part is not None
        positions = [restarted[r] * SPE if e == 2 and r in restarted else e * SPE for r in range(pop.size)]
        expected = torch.tensor([p["lr"] * schedule(s) for s in positions], dtype=torch.float64).float()
        assert torch.equal(step.replica_lr(), expected), (e, step.replica_lr(), expected)
        step.run_epoch(order)

    act = torch.relu if p["activation"] == "relu" else torch.sigmoid
    for r, layers in enumerate(nets):
        params = [t for lin in layers for t in (lin.weight, lin.bias)]

        def optimizer(start: int):
            opt = torch.optim.SGD(params, lr=p["lr"], momentum=p["momentum"], nesterov=p["nesterov"],
                                  weight_decay=p["weight_decay"], foreach=False)  # fmt: skip
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule(s + start))

        opt, sched = optimizer(0)
        for e, order in enumerate(orders):
            if e == 2 and r not in restarted:
                break
            if e == 2:
                opt, sched = optimizer(restarted[r] * SPE)
            rows = order[r // pop.per_stream]
            for i in range(0, 20, BATCH):
                xb, yb = x[rows[i : i + BATCH]], y[rows[i : i + BATCH]]
                opt.zero_grad()
                p["loss"](layers[1](act(layers[0](xb))).unsqueeze(0), yb.unsqueeze(0)).sum().backward()
                opt.step()
                sched.step()
        for layer, lin in zip(model.layers, layers):
            torch.testing.assert_close(layer.replica_weight()[r].detach(), lin.weight.detach().T, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(layer.replica_bias()[r].detach(), lin.bias.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (none here)")
def test_a_step_with_restarts_is_still_captured_and_trains_as_the_eager_one():
    """Each replica's learning rate is computed on the device from its offset, so the step is still captured in a
    CUDA graph (a host sync would make capture fail and the step train eagerly), restarts and masks between epochs
    included."""
    p, data = PROTOCOLS["fast"], torch.Generator().manual_seed(0)
    x, y = torch.randn(20, SIZES[0], generator=data).cuda(), torch.randint(0, SIZES[-1], (20,), generator=data).cuda()
    runs = []
    for graph in (True, False):
        pop, model = make([0, 1, 2], [1.0, 0.1], False, p["activation"], "paper", SIZES)
        model = model.cuda()
        gen = torch.Generator().manual_seed(5)
        step = population_step(model, L2(0.01), p["loss"], "cuda", graph, x=x, y=y, restarts=True, **p)
        for e in range(EPOCHS):
            if e == 1:
                masks = [torch.rand(pop.size, a, b, generator=gen) > 0.5 for a, b in zip(SIZES, SIZES[1:])]
                step.set_masks([m.cuda() for m in masks])
            if e >= 1:
                step.restart(torch.tensor([e, 3 + e]), e - 1)
            step.run_epoch(torch.stack([torch.randperm(20, generator=gen) for _ in range(pop.streams)]).cuda())
        runs.append((step.graph is not None, [t.detach().cpu() for t in model.parameters()]))
    assert runs[0][0] and not runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


class AfterPruning(pl.Callback):
    """Each epoch's parameters, masks and per-replica learning rates right after pruning's work at its start."""

    def __init__(self):
        self.params, self.masks, self.lr = [], [], []

    def on_train_epoch_start(self, trainer, module):
        everyone = torch.arange(module.model.replicas)
        self.params.append(module.replica_parameters(everyone))
        self.masks.append(module.masks())
        self.lr.append(module.stepper.replica_lr())


def step_epochs(pruning) -> dict[str, list[int]]:
    """Replica name -> the epochs of its steps."""
    steps = {}
    for entry in pruning.history:
        steps.setdefault(entry["replica"], []).append(entry["epoch"])
    return steps


# Late rewinding (to epoch 1) with steps on each replica's own training accuracy: replicas restart at different epochs.
STAGGERED = dict(timing=Timing(first_epoch=2, every=3, threshold=0.9, final_epochs=2), ratios=[0.5, 0.05])


@pytest.fixture(scope="module")
def staggered():
    """A toy population pruned by `STAGGERED` (test_pruning.tiny_fit), watched after each epoch's pruning."""
    watch, criterion = AfterPruning(), LotteryTicket(rewind_epoch=1)
    model, pruning, snaps = tiny_fit(**STAGGERED, saliency=criterion, extra_callbacks=[watch])
    return SimpleNamespace(model=model, pruning=pruning, snaps=snaps, watch=watch, criterion=criterion)


def test_each_step_rewinds_the_surviving_weights_and_restarts_that_replicas_schedule(staggered):
    """The weights kept after a step are those stored at the start of epoch 1 bit for bit (themselves the weights
    then), the pruned ones zero, the biases rewound too; each replica's learning rate restarts at epoch 1's place in
    the schedule after each of its steps while a replica not stepping goes on; every replica ends at its target."""
    model, pruning, watch, criterion = staggered.model, staggered.pruning, staggered.watch, staggered.criterion
    stored = criterion.rewind_to
    for saw, kept in zip(watch.params[1], stored, strict=True):
        assert torch.equal(saw, kept)  # taken at the start of epoch 1, before it trained
    index = {r.name: r.index for r in pruning.population.replicas}
    steps = [(e["epoch"], index[e["replica"]]) for e in pruning.history]
    assert len(steps) == 6
    for epoch, r in steps:
        params, masks = watch.params[epoch], watch.masks[epoch]
        for i, (weight, bias) in enumerate(zip(params[0::2], params[1::2])):
            mask = masks[i][r]
            assert torch.equal(weight[r][mask], stored[2 * i][r][mask])
            assert (weight[r][~mask] == 0).all() and (~mask).any()
            assert torch.equal(bias[r], stored[2 * i + 1][r])
    spe, total = 20, 20 * pruning.max_epochs  # 400 training rows in batches of 20; the schedule spans the run
    for epoch, lr in enumerate(watch.lr):
        for r in range(2):
            last = max((e for e, i in steps if i == r and e <= epoch), default=None)
            position = epoch if last is None else epoch - last + criterion.rewind_epoch
            torch.testing.assert_close(float(lr[r]), FAST.lr * cosine(position * spe, total), rtol=1e-6, atol=0)
    kept = [sum(int(layer.replica_mask()[r].sum()) for layer in model.layers) for r in range(2)]
    total_weights = 20 * 16 + 16 * 3
    assert kept == [round(0.5 * total_weights), round(0.05 * total_weights)]
    assert {e for e, r in steps if r == 0} != {e for e, r in steps if r == 1}  # replicas stepped apart


def test_an_lth_replica_trains_the_same_alone_or_among_replicas_restarting_at_other_epochs(staggered):
    """As test_alone_vs_population holds the other methods: to float32 rounding, its steps at the same epochs."""
    among, among_pruning = staggered.model, staggered.pruning
    alone, alone_pruning, _ = tiny_fit(STAGGERED["ratios"][1:], STAGGERED["timing"],
                                       saliency=LotteryTicket(rewind_epoch=1))  # fmt: skip
    steps = step_epochs(among_pruning)
    assert len(set(map(tuple, steps.values()))) > 1, steps  # the population's replicas restart apart
    ((name, epochs),) = step_epochs(alone_pruning).items()
    assert epochs == steps[name]
    (r,) = [r.index for r in among_pruning.population.replicas if r.name == name]
    for theirs, mine in zip(among.layers, alone.layers):
        torch.testing.assert_close(theirs.replica_weight()[r], mine.replica_weight()[0])
        torch.testing.assert_close(theirs.replica_bias()[r], mine.replica_bias()[0])
        assert torch.equal(theirs.replica_mask()[r], mine.replica_mask()[0])


def test_an_lth_run_stopped_between_its_replicas_steps_resumes_exactly_as_one_never_stopped(staggered, tmp_path):
    """Stopped after 5 epochs (checkpointed) right after one replica's step, the other's to come, then resumed (the
    weights to rewind to, each replica's schedule offset and momentum from the checkpoint): the same steps, and every
    weight bit for bit."""
    stop = 5
    steps = list(step_epochs(staggered.pruning).values())
    assert [stop - 1 in epochs for epochs in steps] == [False, True] and max(steps[0]) >= stop, steps
    checkpoint = tmp_path / "job.ckpt"
    tiny_fit(**STAGGERED, saliency=LotteryTicket(rewind_epoch=1), checkpoint=checkpoint, max_epochs=stop)
    model, pruning, snaps = tiny_fit(**STAGGERED, saliency=LotteryTicket(rewind_epoch=1), checkpoint=checkpoint,
                                     resume=True)  # fmt: skip
    assert len(snaps.weights) == len(staggered.snaps.weights) - stop  # only the epochs left
    untimed = [[{k: v for k, v in e.items() if k != "saliency_time_s"} for e in p.history]
               for p in (pruning, staggered.pruning)]  # fmt: skip
    assert untimed[0] == untimed[1]
    for a, b in zip(model.parameters(), staggered.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_rewind_epoch_after_the_first_step_is_refused():
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["method=lth", "method.saliency.rewind_epoch=5", "logger=none"])
    refused = (r"^method.saliency.rewind_epoch must be at most pruning.timing.first_epoch \(4\): the weights to rewind "
               r"to are taken before the first step, got 5$")  # fmt: skip
    with pytest.raises(UserError, match=refused):
        config.build(cfg)


def test_a_tiny_lth_run_reaches_its_targets(tmp_path):
    run = run_train("method=lth", "dataset.train_size=600", "dataset.test_size=300", "protocol.epochs=3",
                    "pruning.timing.first_epoch=1", "pruning.timing.final_epochs=1", "schedule.steps=2", "logger=none",
                    "ratio=[0.1,0.02]", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    records = read_jsonl(tmp_path / "results.jsonl")
    assert [r["nonzero_weights"] for r in records] == [round(0.1 * 79400), round(0.02 * 79400)]
    targets = {r["config"]["method"]["saliency"]["_target_"] for r in records}
    assert targets == {"nncompress.compression.rewinding.LotteryTicket"}
    steps = [json.loads(line) for line in (tmp_path / "pruning.jsonl").read_text().splitlines()]
    assert [(s["epoch"], s["step"]) for s in steps] == [(1, 1), (1, 1), (2, 2), (2, 2)]
    assert all(r["test_acc"] > 0.3 for r in records)
