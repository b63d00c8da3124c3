import pytest
import torch
from torch import nn

from nncompress.models.mlp import PopulationMLP
from nncompress.population import Population
from nncompress.models.functions import cross_entropy_loss, mse_loss


def make(seeds, ratios, crn, activation="relu", scheme="kaiming", sizes=(12, 7, 3)):
    pop = Population.grid(seeds, ratios, crn)
    model = PopulationMLP(pop.streams, pop.per_stream, list(sizes), activation)
    model.init_([torch.Generator().manual_seed(s) for s in pop.seeds("init")], scheme)
    return pop, model


def plain_nets(model) -> list[list[nn.Linear]]:
    """Per replica, its layers as plain nn.Linear holding its weights (the population's (in, out) transposed)."""
    nets = []
    for r in range(model.replicas):
        layers = []
        for layer in model.layers:
            lin = nn.Linear(layer.in_features, layer.out_features)
            lin.weight.data = layer.replica_weight()[r].T.clone()
            lin.bias.data = layer.replica_bias()[r].clone()
            layers.append(lin)
        nets.append(layers)
    return nets


def separate_nets(model, activation=torch.relu):
    """R plain nn.Linear stacks holding the same weights as the population."""
    nets = plain_nets(model)

    def forward(r, x):
        *hidden, last = nets[r]
        for lin in hidden:
            x = activation(lin(x))
        return last(x)

    return forward


@pytest.mark.parametrize("crn", [False, True])
def test_forward_equals_separate_linear_nets(crn):
    pop, model = make([0, 1, 2], [1.0, 0.5], crn)
    forward = separate_nets(model)
    per_stream = torch.randn(pop.streams, 5, 12)
    out = model(per_stream)
    assert out.shape == (pop.size, 5, 3)
    for r in pop.replicas:
        x = per_stream[r.index // pop.per_stream]
        torch.testing.assert_close(out[r.index], forward(r.index, x), rtol=1e-5, atol=1e-5)
    shared = torch.randn(4, 12)
    out = model(shared)
    for r in pop.replicas:
        torch.testing.assert_close(out[r.index], forward(r.index, shared), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss_fn, activation", [(mse_loss, "sigmoid"), (cross_entropy_loss, "relu")])
def test_population_gradient_is_each_replicas_own(loss_fn, activation):
    pop, model = make([0, 1, 2, 3], [1.0], False, activation, "paper")
    x, y = torch.randn(pop.streams, 6, 12), torch.randint(0, 3, (pop.streams, 6))
    loss_fn(model(x), y).sum().backward()
    for r in range(pop.size):
        alone = [layer.replica_weight()[r].detach().clone().requires_grad_() for layer in model.layers]
        biases = [layer.replica_bias()[r].detach().clone().requires_grad_() for layer in model.layers]
        act = torch.sigmoid if activation == "sigmoid" else torch.relu
        h = act(x[r] @ alone[0] + biases[0])
        loss_fn((h @ alone[1] + biases[1]).unsqueeze(0), y[r].unsqueeze(0)).sum().backward()
        for layer, w in zip(model.layers, alone):
            grad = layer.weight.grad.view(layer.streams, layer.in_features, layer.per_stream, -1)
            torch.testing.assert_close(grad.permute(0, 2, 1, 3).reshape(pop.size, *w.shape)[r], w.grad)


def test_common_random_numbers_share_init_within_a_seed_only():
    pop, model = make([0, 1], [1.0, 0.5, 0.1], True)
    w = model.layers[0].replica_weight()
    assert torch.equal(w[0], w[1]) and torch.equal(w[0], w[2])
    assert not torch.equal(w[0], w[3])
    assert torch.equal(model.layers[1].replica_weight()[3], model.layers[1].replica_weight()[5])
    _, independent = make([0, 1], [1.0, 0.5, 0.1], False)
    wi = independent.layers[0].replica_weight()
    assert not torch.equal(wi[0], wi[1])


def test_replica_init_does_not_depend_on_the_rest_of_the_population():
    _, alone = make([3], [0.5], False)
    _, among = make([1, 3], [1.0, 0.5], False)
    assert torch.equal(alone.layers[0].replica_weight()[0], among.layers[0].replica_weight()[3])


def test_paper_init_statistics():
    _, model = make(list(range(20)), [1.0], False, "sigmoid", "paper", sizes=(400, 50, 10))
    w, b = model.layers[0].weight, model.layers[0].bias
    assert abs(w.std().item() - 400**-0.5) < 0.002
    assert abs(b.std().item() - 1.0) < 0.05
