"""The population's training step (training/step.py) against torch.optim on separate nets, eager vs captured."""
import pytest
import torch
from torch import nn

from nncompress.compression.regularizers import L1, L2
from nncompress.models.convnet import PopulationConvNet
from nncompress.models.functions import cross_entropy_loss, mse_loss
from nncompress.training.step import PopulationStep

from test_population_model import make

SIZES, BATCH, SPE, EPOCHS = (12, 7, 3), 8, 3, 3  # 20 samples: 2 full batches and one of 4 per epoch


def population_step(model, regularizer, loss_fn, device="cpu", cuda_graph=False, x=None, y=None, compact=True,
                    restarts=False, fused=True, **protocol):  # fmt: skip
    """The step as the module builds it (fused SGD), or with torch's single-tensor SGD (not `fused`)."""
    lr = torch.tensor(protocol["lr"], device=device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=protocol["momentum"], nesterov=protocol["nesterov"],
                          fused=fused, foreach=None if fused else False)  # fmt: skip
    regularized = [layer.weight for layer in model.layers] if regularizer else []
    return PopulationStep(model, loss_fn, opt, x, y, BATCH, SPE, protocol["schedule"], EPOCHS, regularizer, regularized,
                          protocol["weight_decay"], cuda_graph=cuda_graph, compact=compact, restarts=restarts)  # fmt: skip


def separate_replicas(model):
    """Replica r as plain nn.Linear layers with the population's weights."""
    nets = []
    for r in range(model.replicas):
        layers = []
        for layer in model.layers:
            lin = nn.Linear(layer.in_features, layer.out_features)
            lin.weight.data = layer.replica_weight()[r].detach().T.clone()
            lin.bias.data = layer.replica_bias()[r].detach().clone()
            layers.append(lin)
        nets.append(layers)
    return nets


PROTOCOLS = {
    "fast": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0, schedule="cosine", activation="relu", loss=cross_entropy_loss),
    "paper": dict(lr=1.0, momentum=0.0, nesterov=False, weight_decay=0.0, schedule="inv_sqrt", activation="sigmoid", loss=mse_loss),
    "decay": dict(lr=0.05, momentum=0.5, nesterov=False, weight_decay=0.01, schedule="constant", activation="relu", loss=cross_entropy_loss),
}  # fmt: skip


@pytest.mark.parametrize("crn", [False, True])
@pytest.mark.parametrize("regularizer", [None, L1(0.02), L2(0.02)], ids=["none", "l1", "l2"])
@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_step_trains_each_replica_as_torch_optim_trains_it_alone(name, regularizer, crn):
    """Every replica's weights after 3 epochs (9 steps, a partial batch each epoch, a mask set after the first
    epoch) equal those of its own nn.Linear net trained by torch.optim.SGD (not fused) on the same batches, with
    the regularizer added to the gradients and the pruned entries' gradients and momentum zeroed."""
    p = PROTOCOLS[name]
    torch.manual_seed(0)
    pop, model = make([0, 1], [1.0, 0.5], crn, p["activation"], "paper", SIZES)
    x, y = torch.randn(20, SIZES[0]), torch.randint(0, SIZES[-1], (20,))
    nets = separate_replicas(model)
    step = population_step(model, regularizer, p["loss"], x=x, y=y, **p)
    orders = [torch.stack([torch.randperm(20) for _ in range(pop.streams)]) for _ in range(EPOCHS)]
    keep = [torch.rand(pop.size, a, b) > 0.4 for a, b in zip(SIZES, SIZES[1:])]
    for e, order in enumerate(orders):
        if e == 1:
            step.set_masks(keep)
        step.run_epoch(order)

    act = torch.relu if p["activation"] == "relu" else torch.sigmoid
    for r, layers in enumerate(nets):
        params = [t for lin in layers for t in (lin.weight, lin.bias)]
        opt = torch.optim.SGD(params, lr=p["lr"], momentum=p["momentum"], nesterov=p["nesterov"],
                              weight_decay=p["weight_decay"], foreach=False)  # fmt: skip
        sched = torch.optim.lr_scheduler.LambdaLR(opt, {
            "cosine": lambda s: 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(s, SPE * EPOCHS) / (SPE * EPOCHS)))).item(),
            "inv_sqrt": lambda s: 2.0 / (s // SPE + 1) ** 0.5, "constant": lambda s: 1.0}[p["schedule"]])  # fmt: skip
        for e, order in enumerate(orders):
            if e == 1:  # prune: zero the weights, and their momentum, outside the mask
                for lin, m in zip(layers, keep):
                    with torch.no_grad():
                        lin.weight.mul_(m[r].T)
                    if "momentum_buffer" in opt.state.get(lin.weight, {}):
                        opt.state[lin.weight]["momentum_buffer"].mul_(m[r].T)
            rows = order[r // pop.per_stream]
            for i in range(0, 20, BATCH):
                xb, yb = x[rows[i : i + BATCH]], y[rows[i : i + BATCH]]
                z = layers[1](act(layers[0](xb)))
                opt.zero_grad()
                p["loss"](z.unsqueeze(0), yb.unsqueeze(0)).sum().backward()
                for lin, m in zip(layers, keep):
                    if regularizer is not None:
                        lin.weight.grad += regularizer.strength * regularizer.derivative(lin.weight.detach())
                    if e >= 1:
                        lin.weight.grad *= m[r].T
                opt.step()
                sched.step()
        for layer, lin, m in zip(model.layers, layers, keep):
            torch.testing.assert_close(layer.replica_weight()[r].detach(), lin.weight.detach().T, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(layer.replica_bias()[r].detach(), lin.bias.detach(), rtol=1e-5, atol=1e-6)
            assert (layer.replica_weight()[r].detach()[~m[r]] == 0).all()  # pruned stays exactly 0


def test_step_returns_each_replicas_mean_training_loss():
    torch.manual_seed(0)
    pop, model = make([0, 1, 2], [1.0], False, "relu", "kaiming", SIZES)
    x, y = torch.randn(20, SIZES[0]), torch.randint(0, SIZES[-1], (20,))
    p = PROTOCOLS["fast"]
    losses = population_step(model, None, p["loss"], x=x, y=y, **{**p, "lr": 0.0}).run_epoch(torch.stack([torch.arange(20)] * 3))
    expected = cross_entropy_loss(model(x), y)  # lr 0: the weights never move; batch means of 8, 8 and 4 samples
    batches = [cross_entropy_loss(model(x[i : i + BATCH]), y[i : i + BATCH]) for i in range(0, 20, BATCH)]
    torch.testing.assert_close(losses, sum(batches) / 3)
    assert not torch.allclose(losses, expected)  # a mean over steps, not over samples


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (none here)")
@pytest.mark.parametrize("name", ["fast", "paper"])
def test_captured_step_gives_the_eager_steps_weights(name):
    p, data = PROTOCOLS[name], torch.Generator().manual_seed(0)
    x, y = torch.randn(20, SIZES[0], generator=data).cuda(), torch.randint(0, SIZES[-1], (20,), generator=data).cuda()
    runs = []
    for graph in (True, False):  # the same data, initialisation, masks and batch order for both
        pop, model = make([0, 1, 2], [1.0, 0.1], False, p["activation"], "paper", SIZES)
        model = model.cuda()
        gen = torch.Generator().manual_seed(5)
        step = population_step(model, L1(0.01), p["loss"], "cuda", graph, x=x.clone(), y=y.clone(), **p)
        for e in range(EPOCHS):
            if e == 1:  # new masked parameters: the graph is captured again
                masks = step.masks()
                masks[0] = torch.rand(pop.size, SIZES[0], SIZES[1], generator=gen).cuda() > 0.5
                step.set_masks(masks)
            step.run_epoch(torch.stack([torch.randperm(20, generator=gen) for _ in range(pop.streams)]).cuda())
        runs.append((step.graph is not None, [t.detach().cpu() for t in model.parameters()]))
    assert runs[0][0] and not runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (none here)")
def test_captured_step_draws_the_eager_steps_dropout_masks():
    """The streams' dropout generators are rewound after the warm-up steps and registered with the graph (each
    replay advances them), so a captured ConvNet with dropout trains as the eager one does."""
    p, gen, runs = PROTOCOLS["fast"], torch.Generator().manual_seed(5), []
    x, y = torch.randn(20, 784, generator=gen).cuda(), torch.randint(0, 10, (20,), generator=gen).cuda()
    orders = [torch.stack([torch.randperm(20, generator=gen) for _ in range(3)]).cuda() for _ in range(EPOCHS)]
    for graph in (True, False):
        model = PopulationConvNet(3, 1, 5, 4, 2, 2, 0.3, dropout_seeds=[1, 2, 3])
        model.init_([torch.Generator().manual_seed(s) for s in range(3)])
        model = model.cuda()
        step = population_step(model, None, p["loss"], "cuda", graph, x=x, y=y, **p)
        for e, order in enumerate(orders):
            if e == 1:  # new masked parameters: the graph is captured again
                step.set_masks([torch.arange(3 * model.head.in_features * 10, device="cuda").view(3, -1, 10) % 3 > 0])
            step.run_epoch(order)
        runs.append((step.graph is not None, [t.detach().cpu() for t in model.parameters()]))
    assert runs[0][0] and not runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (none here)"))])  # fmt: skip
@pytest.mark.parametrize("crn", [False, True])
@pytest.mark.parametrize("name", ["fast", "paper"])
def test_a_compacted_step_trains_the_active_replicas_as_the_whole_population_does(name, crn, device):
    """4 of 6 replicas frozen after epoch 1, then one more after epoch 3: each time at most half of those trained
    remain, so the step trains them alone (a CUDA graph of its own on a GPU). Every weight ends as when all six
    are computed, a mask set after the compaction is honoured, momentum, regularizer and learning-rate schedule
    carry over, and the frozen replicas never move."""
    p, runs = PROTOCOLS[name], []
    for compact in (True, False):
        pop, model = make([0, 1, 2], [1.0, 0.5], crn, p["activation"], "paper", SIZES)
        model = model.to(device)
        gen = torch.Generator().manual_seed(5)
        x, y = torch.randn(20, SIZES[0], generator=gen).to(device), torch.randint(0, SIZES[-1], (20,), generator=gen).to(device)
        step = population_step(model, L2(0.02), p["loss"], device, device == "cuda", x, y, compact, **p)
        trained, frozen, losses = [], {}, []
        for e in range(5):
            if e in (1, 3):
                active = torch.tensor([True, False, False, True, False, False] if e == 1 else [True] + [False] * 5)
                step.train_only(active)
                frozen |= {r: [layer.replica_weight()[r].clone() for layer in model.layers] for r in (~active).nonzero().flatten().tolist()}
            if e == 2:  # prune an active replica: the compacted step must take its new mask
                masks = step.masks()
                masks[0] = keep = torch.rand(pop.size, SIZES[0], SIZES[1], generator=gen).to(device) > 0.5
                step.set_masks(masks)
            losses.append(step.run_epoch(torch.stack([torch.randperm(20, generator=gen) for _ in range(pop.streams)]).to(device)))
            trained.append(model.replicas if step.part is None else len(step.part[0]))
        for r, weights in frozen.items():
            for layer, w in zip(model.layers, weights):
                assert torch.equal(layer.replica_weight()[r], w), f"frozen replica {r} moved"
        assert (model.layers[0].replica_weight()[0][~keep[0]] == 0).all()
        runs.append((trained, losses, [t.detach().cpu() for t in model.parameters()]))
    assert runs[0][0] == [6, 2, 2, 1, 1] and runs[1][0] == [6] * 5
    for a, b in zip(runs[0][2], runs[1][2]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for e, (a, b) in enumerate(zip(runs[0][1], runs[1][1])):
        trained_then = [0, 3] if e < 3 else [0]
        torch.testing.assert_close(a[trained_then], b[trained_then])
        assert torch.equal(a[1], runs[0][1][0][1]), "a replica not trained keeps the loss of its last epoch"
