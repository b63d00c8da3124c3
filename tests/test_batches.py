import torch

from nncompress.data.module import EpochOrders, EvalBatches


def test_streams_have_their_own_order_of_their_own_dataset():
    n, offsets = 250, [0, 250, 0]  # streams 0 and 2 read dataset 0, stream 1 reads dataset 1
    orders = EpochOrders(n, offsets, stream_seeds=[11, 12, 13])
    epoch = next(iter(orders))
    assert len(orders) == 1 and epoch.shape == (3, n)  # an epoch is one item
    for s, offset in enumerate(offsets):
        assert torch.equal(epoch[s].sort().values, torch.arange(n) + offset)  # a permutation of its own rows
    assert not torch.equal(epoch[0], epoch[2])  # same dataset, own order
    assert not torch.equal(epoch, next(iter(orders)))  # reshuffled every epoch


def test_same_seeds_same_orders():
    a = [next(iter(EpochOrders(64, [0, 0], [5, 6]))) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    alone = next(iter(EpochOrders(64, [0], [6])))
    assert torch.equal(alone[0], a[0][1])  # a stream's order does not depend on the others


def test_eval_batches_are_consecutive_and_complete():
    x, y = torch.rand(23, 2), torch.arange(23)
    got = list(EvalBatches(x, y, 10))
    assert len(got) == 3 and torch.equal(torch.cat([b[1] for b in got]), y)


def test_per_stream_eval_batches_read_each_streams_dataset():
    x = torch.arange(2 * 23 * 2, dtype=torch.float32).view(2, 23, 2)  # 2 datasets of 23 samples
    y = torch.arange(2 * 23).view(2, 23)
    streams = torch.tensor([1, 0, 1])
    got = list(EvalBatches(x, y, 10, streams))
    assert len(got) == 3 and got[0][0].shape == (3, 10, 2) and got[0][1].shape == (3, 10)
    ys = torch.cat([b[1] for b in got], dim=1)
    assert torch.equal(ys, y[streams]) and torch.equal(torch.cat([b[0] for b in got], dim=1), x[streams])
