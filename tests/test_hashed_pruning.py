"""Pruning a HashedNet: a method ranks its buckets and removes them; a pruned bucket is zero, in every virtual weight
it feeds, through the rest of training; the count kept follows `pruning.keep`; a bucket's score is its virtual
weights' scores summed (|value| for magnitude), checked against autograd. Alone vs in a population:
test_alone_vs_population.py; the refusals: test_cli.py."""
import json

import pytest
import torch

from nncompress.artefact import file, formats
from nncompress.compression.rewinding import LotteryTicket
from nncompress.compression.saliency import OBD, SNIP, Magnitude
from nncompress.compression.schedules import Timing
from nncompress.data.module import EvalBatches
from nncompress.models.functions import LOSSES
from nncompress.models.hashednet import HashedPopulationMLP, bucket_count, bucket_index, edge_sign

from conftest import run_train
from test_lth import AfterPruning
from test_pruning import tiny_fit

SIZES = [6, 4, 3]  # tiny layers: 24 and 12 virtual weights, some buckets feeding none
RATIOS, SEEDS = [0.5, 0.25], [11, 12]  # two replicas with different bucket counts: the padded layout
KEEP = 0.3


def tiny_population() -> HashedPopulationMLP:
    model = HashedPopulationMLP(len(RATIOS), 1, SIZES, "sigmoid", RATIOS, SEEDS)
    model.init_([torch.Generator().manual_seed(g) for g in range(len(RATIOS))], "paper")
    return model


def virtual_layout(r: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, replica r's (bucket of each virtual weight, its sign), from the hash functions alone."""
    out = []
    for i, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:])):
        m = n_in * n_out
        index = torch.from_numpy(bucket_index(SEEDS[r], i, m, bucket_count(RATIOS[r], m)))
        out.append((index, torch.from_numpy(edge_sign(SEEDS[r], i, m)).double()))
    return out


def reference_bucket_scores(model, r: int, x, y, score) -> list[torch.Tensor]:
    """Replica r's bucket scores: `score(virtual weights, gradient, Hessian diagonal)` of each virtual weight (by
    autograd, in float64), summed over the virtual weights each bucket feeds with torch.bincount."""
    layout = virtual_layout(r)
    buckets = [layer.buckets.split(layer.bucket_counts)[r].detach().double() for layer in model.layers]
    biases = [layer.replica_bias()[r].detach().double() for layer in model.layers]
    flat = torch.cat([b[index] * sign for b, (index, sign) in zip(buckets, layout)])
    shapes = list(zip(SIZES, SIZES[1:]))

    def loss(v):
        w1, w2 = v[: shapes[0][0] * shapes[0][1]].view(shapes[0]), v[shapes[0][0] * shapes[0][1] :].view(shapes[1])
        z = torch.sigmoid(x.double() @ w1 + biases[0]) @ w2 + biases[1]
        return LOSSES["cross_entropy"].value(z.unsqueeze(0), y.unsqueeze(0)).sum()

    grad = torch.autograd.functional.jacobian(loss, flat)
    diag = torch.autograd.functional.hessian(loss, flat).diagonal()
    virtual = score(flat, grad, diag).split([a * b for a, b in shapes])
    return [torch.bincount(index, s, minlength=len(b)) for (index, _), s, b in zip(layout, virtual, buckets)]


@pytest.mark.parametrize("criterion, score", [
    (OBD(), lambda w, g, h: w**2 * h.abs()),  # the authors' w²|H_kk|
    (OBD(hessian="exact"), lambda w, g, h: 0.5 * h * w**2),
    (SNIP(), lambda w, g, h: (g * w).abs()),
])  # fmt: skip
def test_a_buckets_score_is_the_sum_of_its_virtual_weights_scores(criterion, score):
    torch.manual_seed(0)
    model, x, y = tiny_population(), torch.randn(13, SIZES[0]), torch.randint(0, SIZES[-1], (13,))
    index = torch.arange(len(RATIOS))
    ours = criterion.tied(criterion.scores(model.subset(index), EvalBatches(x, y, 5), "cross_entropy", [0, 1]),
                          model.tied_weights(index), [0, 1])  # fmt: skip
    for r in range(len(RATIOS)):
        for layer, got, want in zip(model.layers, ours, reference_bucket_scores(model, r, x, y, score)):
            k = layer.bucket_counts[r]
            assert got.shape == (len(RATIOS), 1, max(layer.bucket_counts))
            torch.testing.assert_close(got[r, 0, :k].double(), want, rtol=1e-4, atol=1e-7)
            assert not got[r, 0, k:].any()  # the padding past its buckets


def test_magnitude_ranks_a_bucket_by_its_value():
    model, index = tiny_population(), torch.arange(len(RATIOS))
    criterion = Magnitude()
    ours = criterion.tied(criterion.scores(model.subset(index), None, "cross_entropy", [0, 1]),
                          model.tied_weights(index), [0, 1])  # fmt: skip
    for layer, got in zip(model.layers, ours):
        for r, values in enumerate(layer.buckets.split(layer.bucket_counts)):
            assert torch.equal(got[r, 0, : len(values)], values.abs())


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """Two tiny HashedNet populations pruned to KEEP of their buckets, ranked globally (magl1) or per layer
    (random_layer), each with its artefacts: two steps, the last in epoch 1, then an epoch of training."""
    tmp = tmp_path_factory.mktemp("hashed")
    proc = run_train("-m", "model=hashednet", "method=magl1,random_layer", "ratio=[0.1,0.05]", f"pruning.keep={KEEP}",
                     "dataset.train_size=600", "dataset.test_size=300", "logger=none", "pruning.timing.first_epoch=0",
                     "pruning.timing.final_epochs=1", "schedule.steps=2", "export=true", f"results_dir={tmp}/store",
                     f"hydra.sweep.dir={tmp}/sweep")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {scope: [json.loads(line) for line in (tmp / "sweep" / job / "results.jsonl").read_text().splitlines()]
               for scope, job in (("global", "0"), ("layer", "1"))}  # fmt: skip
    return tmp / "store" / "artefacts", records


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruned_buckets_stay_zero_in_every_virtual_weight_and_the_count_kept_is_the_target(pruned, scope):
    artefacts, records = pruned
    for record in records[scope]:
        path = artefacts / f"{record['key']}.safetensors"
        tensors, config = file.read(path)
        sizes = config["architecture"]["sizes"]
        counts = [bucket_count(record["ratio"], a * b) for a, b in zip(sizes, sizes[1:])]
        assert config["buckets"] == counts  # the ratio still sizes the buckets
        assert config["format"] == "coded-hashed-mlp"  # its zero buckets cost only their gaps
        buckets = [formats.scattered(*layer[:2], k) for layer, k in zip(formats.decoded_layers(path, tensors, config), counts)]
        kept = [int((b != 0).sum()) for b in buckets]
        if scope == "global":  # every layer's buckets ranked together: the replica's count is exact
            assert sum(kept) == sum(counts) - round((1 - KEEP) * sum(counts)), record["ratio"]
        else:  # each layer keeps KEEP of its own
            assert kept == [k - round((1 - KEEP) * k) for k in counts], record["ratio"]
        assert record["real_weights"] == sum(kept) and record["parameters"] == sum(kept) + sum(sizes[1:])
        nonzero = 0
        for i, (b, (n_in, n_out)) in enumerate(zip(buckets, zip(sizes, sizes[1:]))):
            index = torch.from_numpy(bucket_index(config["hash_seed"], i, n_in * n_out, len(b)))
            virtual = b[index] * torch.from_numpy(edge_sign(config["hash_seed"], i, n_in * n_out))
            assert not virtual[b[index] == 0].any()
            nonzero += int((virtual != 0).sum())
        assert record["nonzero_weights"] == nonzero  # the virtual weights of the buckets kept, and only those


def test_lth_rewinds_the_kept_buckets_and_leaves_the_pruned_at_zero():
    """After each step a replica's kept buckets are those stored at the start of epoch 1 bit for bit, its pruned
    ones zero, in a population whose replicas have different bucket counts; each ends with KEEP of them."""
    watch, criterion = AfterPruning(), LotteryTicket(rewind_epoch=1)
    timing = Timing(first_epoch=2, every=1, threshold=None, final_epochs=2)
    model, pruning, _ = tiny_fit([0.5, 0.2], timing, saliency=criterion, extra_callbacks=[watch], keep=KEEP)
    stored = criterion.rewind_to
    index = {r.name: r.index for r in pruning.population.replicas}
    steps = [(e["epoch"], index[e["replica"]]) for e in pruning.history]
    assert len(steps) == 6
    for epoch, r in steps:
        params, masks = watch.params[epoch], watch.masks[epoch]
        for i, (layer, buckets) in enumerate(zip(model.layers, params[0::2])):
            k, mask = layer.bucket_counts[r], masks[i][r, 0]
            assert torch.equal(buckets[r, 0][mask], stored[2 * i][r, 0][mask])
            assert not buckets[r, 0][~mask].any() and (~mask[:k]).any() and not mask[k:].any()
    for r in range(2):
        total = sum(layer.bucket_counts[r] for layer in model.layers)
        kept = sum(int((layer.buckets.split(layer.bucket_counts)[r] != 0).sum()) for layer in model.layers)
        assert kept == total - round((1 - KEEP) * total)
