import pytest
import torch
from torch import nn

from nncompress.models.convnet import PopulationConvNet, conv_output_side, convnet_parameters
from nncompress.models.layers import StreamDropout


def plain_convnet(kernel, channels, stride, pool, dropout=0.0):
    side = conv_output_side(28, kernel, stride, pool)
    return nn.Sequential(
        nn.Conv2d(1, channels, kernel, stride), nn.ReLU(), nn.MaxPool2d(pool), nn.Dropout(dropout), nn.Flatten(),
        nn.Linear(channels * side * side, 10),
    )  # fmt: skip


@pytest.mark.parametrize("arch", [(5, 4, 1, 2), (10, 12, 3, 4), (7, 9, 2, 3), (6, 5, 1, 4)])
def test_parameter_count_matches_an_equivalent_module(arch):
    expected = sum(p.numel() for p in plain_convnet(*arch).parameters())
    assert convnet_parameters(*arch) == expected
    pop = PopulationConvNet(2, 1, *arch, dropout=0.0)
    assert {c["parameters"] for c in pop.replica_counts()} == {expected}


@pytest.mark.parametrize("streams, per_stream", [(3, 1), (1, 3)])
def test_batched_seeds_equal_separate_convnets(streams, per_stream):
    arch = (6, 5, 2, 2)
    pop = PopulationConvNet(streams, per_stream, *arch, dropout=0.0)
    pop.init_([torch.Generator().manual_seed(s) for s in range(streams)])
    x = torch.rand(streams, 4, 784)
    out = pop(x)
    shared = pop(x[0])
    R, C = streams * per_stream, arch[1]
    for r in range(R):
        net = plain_convnet(*arch)
        net[0].weight.data = pop.conv.weight.data[r * C : (r + 1) * C].clone()
        net[0].bias.data = pop.conv.bias.data[r * C : (r + 1) * C].clone()
        net[5].weight.data = pop.head.replica_weight()[r].T.clone()
        net[5].bias.data = pop.head.replica_bias()[r].clone()
        images = x[r // per_stream].view(-1, 1, 28, 28)
        torch.testing.assert_close(out[r], net(images), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(shared[r], net(x[0].view(-1, 1, 28, 28)), rtol=1e-5, atol=1e-5)
    if per_stream > 1:
        assert torch.equal(pop.conv.weight[:C], pop.conv.weight[C : 2 * C])  # one stream: shared init


def test_dropout_masks_are_each_streams_own():
    """A stream's masks come from its own seed: the same alone as among other streams, shared by its replicas,
    fresh each step."""
    among, alone = StreamDropout(0.25, [11, 22, 33], 2), StreamDropout(0.25, [22], 2)
    h, previous = torch.ones(4, 6, 500), None
    for _ in range(3):
        out = among(h)
        assert torch.equal(out[:, 2:4], alone(h[:, 2:4]))
        assert torch.equal(out[:, 2], out[:, 3]) and not torch.equal(out[:, 2], out[:, 4])
        assert previous is None or not torch.equal(out, previous)
        previous = out
    assert torch.equal(out.unique(), torch.tensor([0.0, 1 / 0.75]))  # dropped, or scaled by 1 / (1 - p)
    assert abs(float((out == 0).float().mean()) - 0.25) < 0.02
    among.eval()
    assert among(h) is h
