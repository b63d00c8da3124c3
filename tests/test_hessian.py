import pytest
import torch

from nncompress.compression.hessian import hessian_diagonal
from nncompress.data.module import EvalBatches
from nncompress.models.functions import LOSSES

from test_population_model import make


def autograd_diagonal(model, r, x, y, loss):
    """Diagonal of torch.autograd.functional.hessian of replica r's mean loss in its weight matrices."""
    w1, w2 = (layer.replica_weight()[r].detach().double() for layer in model.layers)
    b1, b2 = (layer.replica_bias()[r].detach().double() for layer in model.layers)

    def f(flat):
        v1 = flat[: w1.numel()].view_as(w1)
        v2 = flat[w1.numel() :].view_as(w2)
        z = model.activation(x.double() @ v1 + b1) @ v2 + b2
        return LOSSES[loss].value(z.unsqueeze(0), y.unsqueeze(0)).sum()

    h = torch.autograd.functional.hessian(f, torch.cat([w1.flatten(), w2.flatten()]))
    d = torch.diagonal(h)
    return d[: w1.numel()].view_as(w1), d[w1.numel() :].view_as(w2)


@pytest.mark.parametrize("loss, activation", [("mse", "sigmoid"), ("cross_entropy", "relu")])
@pytest.mark.parametrize("crn", [False, True])
def test_diagonal_equals_autograd_hessian(loss, activation, crn):
    torch.manual_seed(0)
    pop, model = make([0, 1], [1.0, 0.5], crn, activation, "paper", sizes=(6, 5, 4))
    x, y = torch.randn(13, 6), torch.randint(0, 4, (13,))
    ours = hessian_diagonal(model, EvalBatches(x, y, 5), loss)  # several batches, averaged
    for r in range(pop.size):
        ref1, ref2 = autograd_diagonal(model, r, x, y, loss)
        torch.testing.assert_close(ours[0][r].double(), ref1, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours[1][r].double(), ref2, rtol=1e-5, atol=1e-5)


def test_gauss_newton_is_nonnegative_and_differs_from_exact():
    pop, model = make([0], [1.0], False, "sigmoid", "paper", sizes=(6, 5, 4))
    x, y = torch.randn(30, 6), torch.randint(0, 4, (30,))
    gn = hessian_diagonal(model, EvalBatches(x, y, 30), "mse", gauss_newton=True)
    exact = hessian_diagonal(model, EvalBatches(x, y, 30), "mse")
    assert all((h >= 0).all() for h in gn)
    assert not torch.allclose(gn[0], exact[0])


@pytest.mark.parametrize("crn", [False, True])
def test_per_stream_data_gives_each_replica_the_hessian_of_its_own_dataset(crn):
    """Streams reading different datasets (a mixed population): replica r's diagonal is the autograd Hessian on
    the dataset of its stream."""
    torch.manual_seed(1)
    pop, model = make([0, 1, 2], [1.0, 0.5], crn, "sigmoid", "paper", sizes=(6, 5, 4))
    x, y = torch.randn(2, 11, 6), torch.randint(0, 4, (2, 11))  # 2 datasets of 11 samples
    streams = torch.tensor([g % 2 for g in range(pop.streams)])
    ours = hessian_diagonal(model, EvalBatches(x, y, 4, streams), "mse")
    for r in range(pop.size):
        k = int(streams[r // pop.per_stream])
        ref1, ref2 = autograd_diagonal(model, r, x[k], y[k], "mse")
        torch.testing.assert_close(ours[0][r].double(), ref1, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours[1][r].double(), ref2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_stream_data", [False, True])
def test_a_subset_of_replicas_scores_and_predicts_as_in_the_whole_population(per_stream_data):
    """The pruning callback scores only the replicas due (model.subset): each gets the rows the whole population
    would give it, whether it shares its stream with others (common random numbers) and whatever its dataset."""
    torch.manual_seed(2)
    pop, model = make([0, 1, 2], [1.0, 0.5], True, "sigmoid", "paper", sizes=(6, 5, 4))  # 3 streams of 2 replicas
    for layer in model.layers:  # a pruned population: the subset must carry the zeros
        layer.set_replica_mask_(torch.rand(pop.size, layer.in_features, layer.out_features) > 0.3)
    if per_stream_data:
        x, y = torch.randn(2, 11, 6), torch.randint(0, 4, (2, 11))
        batches = EvalBatches(x, y, 4, torch.tensor([1, 0, 1]))
    else:
        batches = EvalBatches(torch.randn(11, 6), torch.randint(0, 4, (11,)), 4)
    index = torch.tensor([1, 4, 5])  # stream 0's second replica, both of stream 2
    sub = model.subset(index)
    sub_batches = batches.for_streams(model.input_streams(index))
    whole, part = hessian_diagonal(model, batches, "mse"), hessian_diagonal(sub, sub_batches, "mse")
    for h, h_sub in zip(whole, part):
        torch.testing.assert_close(h_sub, h[index])
    for (xb, _), (xs, _) in zip(batches, sub_batches):
        torch.testing.assert_close(sub(xs), model(xb)[index])
    assert model.subset(torch.arange(pop.size)) is model
