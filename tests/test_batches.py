import torch

from nncompress.data.module import EvalBatches, StreamBatches


def test_streams_have_their_own_order_and_cover_every_sample():
    n = 250
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    y = torch.arange(n) % 10
    batches = StreamBatches(x, y, batch_size=100, stream_seeds=[11, 12, 13])
    epoch = list(batches)
    assert len(epoch) == len(batches) == 3
    assert [b[0].shape for b in epoch] == [(3, 100, 3), (3, 100, 3), (3, 50, 3)]  # last partial batch kept
    order = torch.cat([b[0][:, :, 0] for b in epoch], dim=1).long()
    for s in range(3):
        assert torch.equal(order[s].sort().values, torch.arange(n))  # a permutation of the whole set
        assert torch.equal(torch.cat([b[1] for b in epoch], 1)[s], y[order[s]])  # labels follow the images
    assert not torch.equal(order[0], order[1]) and not torch.equal(order[1], order[2])
    next_epoch = torch.cat([b[0][:, :, 0] for b in batches], dim=1).long()
    assert not torch.equal(order, next_epoch)  # reshuffled every epoch


def test_same_seeds_same_orders():
    x, y = torch.rand(64, 2), torch.arange(64)
    a = [b[1] for b in StreamBatches(x, y, 10, [5, 6])]
    b = [b[1] for b in StreamBatches(x, y, 10, [5, 6])]
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_eval_batches_are_consecutive_and_complete():
    x, y = torch.rand(23, 2), torch.arange(23)
    got = list(EvalBatches(x, y, 10))
    assert len(got) == 3 and torch.equal(torch.cat([b[1] for b in got]), y)
