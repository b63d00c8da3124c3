import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nncompress.models.hashednet import HashedPopulationLinear, bucket_count, bucket_index, edge_sign
from nncompress.models.mlp import PopulationMLP
from functools import partial


def test_bucket_count():
    assert bucket_count(1.0, 78400) == 78400  # ratio 1: still hashed, one bucket per edge
    assert bucket_count(0.1, 78400) == 7840 and bucket_count(0.01, 1000) == 10
    assert bucket_count(0.002, 1000) == 2 and bucket_count(0.0001, 1000) == 1
    assert bucket_count(0.015, 1000) == 15 and bucket_count(0.0155, 1000) == 16  # ceil


def test_hash_is_identical_in_another_process():
    here = bucket_index(12345, 1, 5000, 97).tolist() + edge_sign(12345, 1, 5000).tolist()
    code = (
        "from nncompress.models.hashednet import bucket_index, edge_sign;"
        "print(bucket_index(12345, 1, 5000, 97).tolist() + edge_sign(12345, 1, 5000).tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == here


def test_hash_is_uniform_and_seed_dependent():
    counts = np.bincount(bucket_index(7, 0, 78400, 784), minlength=784)
    assert chisquare(counts).pvalue > 1e-3  # no detectable departure from uniform
    signs = edge_sign(7, 0, 78400)
    assert set(np.unique(signs)) == {-1.0, 1.0} and abs(signs.mean()) < 0.02
    assert (bucket_index(7, 0, 1000, 50) != bucket_index(8, 0, 1000, 50)).mean() > 0.9
    assert (bucket_index(7, 0, 1000, 50) != bucket_index(7, 1, 1000, 50)).mean() > 0.9  # layers differ too


def hashed(ratios, seeds, crn_streams=None):
    R = len(ratios)
    G, P = (crn_streams, R // crn_streams) if crn_streams else (R, 1)
    layer = partial(HashedPopulationLinear, ratios=ratios, hash_seeds=seeds)
    model = PopulationMLP(G, P, [7, 5, 3], "sigmoid", layer)
    model.init_([torch.Generator().manual_seed(g) for g in range(G)], "paper")
    return model


@pytest.mark.parametrize("crn_streams", [None, 1])
def test_forward_equals_mlp_with_the_expanded_virtual_matrix(crn_streams):
    ratios, seeds = [1.0, 0.3, 0.05], [1, 2, 3]
    model = hashed(ratios, seeds, crn_streams)
    x = torch.randn(4, 7)
    out = model(x)
    for r, (ratio, seed) in enumerate(zip(ratios, seeds)):
        h = x
        for i, layer in enumerate(model.layers):
            m = layer.in_features * layer.out_features
            k = bucket_count(ratio, m)
            offset = sum(layer.bucket_counts[:r])
            virtual = layer.buckets.detach()[offset + torch.from_numpy(bucket_index(seed, i, m, k))]
            virtual = (virtual * torch.from_numpy(edge_sign(seed, i, m))).view(layer.in_features, layer.out_features)
            h = h @ virtual + layer.replica_bias()[r]
            h = torch.sigmoid(h) if i == 0 else h
        torch.testing.assert_close(out[r], h)
    assert [c["real_weights"] for c in model.replica_counts()] == [
        sum(bucket_count(q, m) for m in (35, 15)) for q in ratios
    ]


def test_bucket_gradient_is_the_sum_of_virtual_gradients():
    model = hashed([0.2, 0.5], [4, 5])
    layer = model.layers[0]
    virtual = layer.effective_weight().detach().requires_grad_()
    x, y = torch.randn(2, 6, 7), torch.randn(2, 6, 5)
    # gradient of a loss through the virtual weights alone
    ((torch.baddbmm(layer.bias.detach(), x, virtual) - y) ** 2).sum().backward()
    ((layer(x) - y) ** 2).sum().backward()
    manual = torch.zeros_like(layer.buckets).index_add_(0, layer.index.flatten(), (virtual.grad * layer.sign).flatten())
    torch.testing.assert_close(layer.buckets.grad, manual)
