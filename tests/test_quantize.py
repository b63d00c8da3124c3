"""The quantization stage (`quantize=kmeans`): k-means against a plain Lloyd, the shared values' gradients against
autograd, a quantized run's weights (few values, the same zeros), a replica alone and in a population, keys, bad
options, and a job stopped during the stage."""
import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nncompress import config, load_results
from nncompress.compression.quantization import centroid_gradients, kmeans
from nncompress.errors import UserError
from nncompress.models.functions import cross_entropy_loss
from nncompress.models.layers import replica_targets
from nncompress.results import experiment_key, read_jsonl
from nncompress.training.quantization import Codebook

from conftest import ROOT, run_train
from test_checkpoints import comparable
from test_artefact import population_model
from test_faults import composed
from test_population_model import make

SMALL = ["dataset.train_size=600", "dataset.test_size=300", "model.hidden=20", "logger=none", "save_model=true"]
# Replicas end at different epochs (steps fire on their own training accuracy, training ends at its own peak).
PRUNED = [*SMALL, "method=magl1", "schedule.steps=3", "pruning.timing.first_epoch=1", "pruning.timing.every=4",
          "pruning.timing.threshold=0.95", "pruning.timing.final_epochs=6", "pruning.timing.final=train_peak"]  # fmt: skip
KMEANS = ["quantize=kmeans", "quantize.bits=3", "quantize.epochs=2", "quantize.tune_lr=0.002"]


def plain_lloyd(values: np.ndarray, clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Textbook Lloyd on one set of numbers: centroids evenly spaced from min to max, each value to its nearest
    centroid (the first at a tie), each centroid to its values' mean (kept when it has none), until no value moves."""
    centroids = np.linspace(values.min(), values.max(), clusters) if len(values) else np.zeros(clusters)
    codes = None
    while True:
        new = np.abs(values[:, None] - centroids[None, :]).argmin(1)
        if codes is not None and np.array_equal(new, codes):
            return centroids, codes
        codes = new
        centroids = np.array([values[codes == k].mean() if (codes == k).any() else centroids[k] for k in range(clusters)])


def test_kmeans_equals_a_plain_lloyd_per_replica():
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(5, 400, generator=generator, dtype=torch.float64) * 0.1
    kept = torch.rand(5, 400, generator=generator) < 0.3
    kept[2] = False
    kept[2, 17] = True  # one value
    kept[3] = False  # none
    kept[4] = False
    kept[4, :5] = True  # fewer values than clusters
    for clusters in (2, 16):
        centroids, codes = kmeans(values, kept, clusters)
        assert centroids.shape == (5, clusters) and codes.shape == (5, 400) and (codes[~kept] == 0).all()
        for r in range(5):
            want, want_codes = plain_lloyd(values[r][kept[r]].numpy(), clusters)
            np.testing.assert_allclose(centroids[r].numpy(), want, rtol=1e-9, atol=1e-12)
            assert np.array_equal(codes[r][kept[r]].numpy(), want_codes), (clusters, r)
        # each replica is clustered on its own: alone, the same
        alone, alone_codes = kmeans(values[1:2], kept[1:2], clusters)
        assert torch.equal(alone, centroids[1:2]) and torch.equal(alone_codes, codes[1:2])


def test_shared_values_move_by_the_sum_of_their_weights_gradients():
    """The centroids' gradient (per-cluster sums of the weights' gradients) equals autograd's gradient of the loss
    with respect to the shared values, through weights built from them."""
    population, model = make([0, 1], [1.0, 0.3], False, sizes=(12, 7, 3))
    model.layers[0].set_replica_mask_(torch.rand(4, 12, 7, generator=torch.Generator().manual_seed(1)) < 0.5)
    books = [Codebook.of(layer, 4) for layer in model.layers]
    x, y = torch.randn(4, 9, 12, generator=torch.Generator().manual_seed(2)), torch.randint(0, 3, (4, 9))
    grads = torch.autograd.grad(cross_entropy_loss(model(x), y).sum(), [layer.weight for layer in model.layers])
    shared = [book.centroids.clone().requires_grad_() for book in books]
    h = x
    for i, (book, c) in enumerate(zip(books, shared)):  # the replicas as plain nets over their shared values
        weight = torch.where(book.kept, c.gather(1, book.codes), 0).view(4, book.layer.in_features, -1)
        h = torch.baddbmm(book.layer.replica_bias().unsqueeze(1), h, weight)
        h = h.relu() if i < len(books) - 1 else h
    want = torch.autograd.grad(cross_entropy_loss(h, y).sum(), shared)
    for book, grad, expected in zip(books, grads, want):
        got = centroid_gradients(book.layer.per_replica(grad).flatten(1), book.codes, book.kept, 4)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
        assert expected.abs().sum() > 0


def test_a_hashednet_shares_its_buckets_values_and_each_moves_by_its_buckets_gradients():
    """HashedNet (pruned buckets among them): each replica's kept buckets take at most 2^B values, the zero ones stay
    zero, and a step moves each shared value by the sum of its buckets' gradients (autograd through the hashing),
    added up here bucket by bucket."""
    model, population = population_model({"name": "hashednet", "hash_seed": 3, "shared_hash": False}, [0.1, 0.3], seeds=(0, 1))
    with torch.no_grad():
        for layer in model.layers:
            layer.buckets[::4] = 0  # as pruning leaves them
    before = [layer.replica_units().flatten(1).clone() for layer in model.layers]
    books = [Codebook.of(layer, 4) for layer in model.layers]
    for layer, book, old in zip(model.layers, books, before):
        after = layer.replica_units().flatten(1)
        assert torch.equal(after == 0, old == 0)
        for r in range(len(after)):
            assert 1 < len(after[r][after[r] != 0].unique()) <= 4
    x, y = torch.randn(population.streams, 9, 784, generator=torch.Generator().manual_seed(2)), torch.randint(0, 10, (population.streams, 9), generator=torch.Generator().manual_seed(3))
    grads = torch.autograd.grad(cross_entropy_loss(model(x), replica_targets(y, population.size)).sum(), [layer.stored for layer in model.layers])
    for layer, book, grad in zip(model.layers, books, grads):
        per_bucket = layer.replica_units(grad).flatten(1)
        want = torch.zeros_like(book.centroids)
        for r, k in itertools.product(range(len(want)), range(4)):
            want[r, k] = per_bucket[r][book.kept[r] & (book.codes[r] == k)].sum()
        start = book.centroids.clone()
        book.descend(grad, 0.5)
        scale = float(per_bucket.abs().sum(1).max())  # float32 sums in another order: equal to their rounding
        torch.testing.assert_close(book.centroids, start - 0.5 * want, rtol=1e-5, atol=1e-6 * scale)
        stored = layer.replica_units().flatten(1)
        assert torch.equal(stored, torch.where(book.kept, book.centroids.gather(1, book.codes), 0))
        assert want.abs().sum() > 0


def stored_model(run_dir) -> dict:
    return torch.load(run_dir / "model.pt", weights_only=False)


def weights(state: dict, model_layers: int = 2) -> list[torch.Tensor]:
    """Per layer, every replica's weights (R, in * out) (no common random numbers: weight layout is (R, in, out))."""
    return [state["state_dict"][f"layers.{i}.weight"].flatten(1) for i in range(model_layers)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (records, run folder) of the same population unquantized, quantized, and one replica quantized alone."""
    where = tmp_path_factory.mktemp("quantize")
    configs = {"none": [*PRUNED, "seeds=[0,1]", "ratio=[0.05,0.3]"],
               "kmeans": [*PRUNED, "seeds=[0,1]", "ratio=[0.05,0.3]", *KMEANS],
               "alone": [*PRUNED, "seeds=[1]", "ratio=0.3", *KMEANS]}  # fmt: skip
    done = {}
    for name, overrides in configs.items():
        proc = run_train(*overrides, f"results_dir={where}/{name}/store", f"hydra.run.dir={where}/{name}/run")
        assert proc.returncode == 0, proc.stderr[-2000:]
        done[name] = read_jsonl(where / name / "run" / "results.jsonl"), where / name / "run"
    return done


def test_a_quantized_layer_has_its_shared_values_and_its_zeros(runs):
    (plain, plain_dir), (quantized, quantized_dir) = runs["none"], runs["kmeans"]
    assert len({r["epochs"] for r in plain}) > 1  # replicas finished at different epochs
    distinct = []
    for before, after in zip(weights(stored_model(plain_dir)), weights(stored_model(quantized_dir)), strict=True):
        assert torch.equal(before == 0, after == 0)  # the same zeros: pruned weights stay zero, kept ones stay kept
        for r in range(len(after)):
            assert len(after[r][after[r] != 0].unique()) <= 2**3
            distinct.append(len(before[r][before[r] != 0].unique()))
    assert max(distinct) > 2**3  # there was something to share
    for p, q in zip(plain, quantized):
        assert q["config"]["quantize"] == {"_target_": "nncompress.compression.quantization.KMeans", "name": "kmeans",
                                           "bits": 3, "epochs": 2, "tune_lr": 0.002}  # fmt: skip
        assert p["config"]["quantize"]["name"] == "none" and p["key"] != q["key"]
        assert (p["nonzero_weights"], p["epochs"]) == (q["nonzero_weights"], q["epochs"])
        assert abs(p["test_acc"] - q["test_acc"]) < 0.1  # trained weights shared, not lost


def test_a_replica_is_quantized_alike_alone_and_in_a_population(runs):
    """As training (test_alone_vs_population): to float32 rounding, its accuracies to one example."""
    (quantized, quantized_dir), ((alone,), alone_dir) = runs["kmeans"], runs["alone"]
    (same,) = [r for r in quantized if (r["seed"], r["ratio"]) == (1, 0.3)]
    index = quantized.index(same)
    assert (same["key"], same["nonzero_weights"], same["epochs"]) == (alone["key"], alone["nonzero_weights"], alone["epochs"])
    for split, n in (("test", 300), ("train", 600)):
        assert abs(round(n * same[f"{split}_acc"]) - round(n * alone[f"{split}_acc"])) <= 1
    for layer, alone_layer in zip(weights(stored_model(quantized_dir)), weights(stored_model(alone_dir))):
        torch.testing.assert_close(layer[index], alone_layer[0])
        assert len(layer[index].unique()) == len(alone_layer[0].unique())


def key(*overrides, ratio=1.0):
    return experiment_key(OmegaConf.to_container(composed(*overrides), resolve=True), "mnist", 0, ratio, "original")


def test_quantize_none_changes_no_key_and_kmeans_is_its_own_experiment():
    for base in ([], ["method=magl1"], ["model=hashednet"]):
        cfg = OmegaConf.to_container(composed(*base), resolve=True)
        assert cfg["quantize"]["name"] == "none"
        before = {k: v for k, v in cfg.items() if k != "quantize"}  # a config from before the node existed
        assert experiment_key(cfg, "mnist", 0, 0.1, "original") == experiment_key(before, "mnist", 0, 0.1, "original")
    plain, quantized = key("method=magl1", ratio=0.1), key("method=magl1", "quantize=kmeans", ratio=0.1)
    assert plain != quantized == key("method=magl1", "quantize=kmeans", "quantize.bits=5", ratio=0.1)  # the default
    assert len({quantized, key("method=magl1", "quantize=kmeans", "quantize.bits=4", ratio=0.1),
                key("method=magl1", "quantize=kmeans", "quantize.epochs=0", ratio=0.1),
                key("method=magl1", "quantize=kmeans", "quantize.tune_lr=0.01", ratio=0.1)}) == 4  # fmt: skip


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["quantize.bits=0"], "quantize.bits must be at least 1, got 0"),
        (["quantize.bits=9"], "quantize.bits must be at most 8 (a shared value is stored as a code of at most one"),
        (["quantize.bits=five"], "quantize.bits must be an integer, got 'five'"),
        (["quantize.epochs=-1"], "quantize.epochs must be at least 0, got -1"),
        (["quantize.tune_lr=-0.1"], "quantize.tune_lr must be a finite number in [0, inf], got -0.1"),
        (["model=convnet"], "quantize=kmeans shares the values of weight matrices that hold all of a model's weights, "
                            "which model=convnet's do not (it applies to model=hashednet or model=mlp)"),
    ],
)
def test_bad_quantize_options_are_refused_before_training(overrides, message):
    with pytest.raises(UserError) as err:
        config.build(composed("quantize=kmeans", *overrides))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_job_stopped_during_the_stage_resumes_from_its_last_epoch(tmp_path):
    """The last training epoch is checkpointed; stopped while quantizing, the job reruns the stage from there and
    stores what a job never stopped does."""
    overrides = [*SMALL, "protocol.epochs=3", "checkpoint_every_s=0", "quantize=kmeans", "quantize.epochs=150"]
    whole = run_train(*overrides, f"results_dir={tmp_path}/whole", f"hydra.run.dir={tmp_path}/whole_run")
    assert whole.returncode == 0, whole.stderr[-2000:]
    overrides.append(f"results_dir={tmp_path}/store")
    proc = subprocess.Popen([sys.executable, str(ROOT / "src" / "train.py"), *overrides, f"hydra.run.dir={tmp_path}/a"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    for line in proc.stdout:
        if line.startswith("quantization epoch 1/"):
            break
    proc.terminate()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "stopped by SIGTERM" in err and "quantization epoch 150/" not in out, err[-2000:]
    assert "its state after epoch 3 is saved" in err and not (tmp_path / "a" / "results.jsonl").exists()
    resumed = run_train(*overrides, f"hydra.run.dir={tmp_path}/b")
    assert resumed.returncode == 0 and "resuming from epoch 3 of 3" in resumed.stderr + resumed.stdout
    stored = [comparable(read_jsonl(tmp_path / run / "results.jsonl")) for run in ("b", "whole_run")]
    assert stored[0] == stored[1]


def test_quantized_replicas_are_a_variant_of_their_own(runs):
    rows = load_results(runs["none"][1], runs["kmeans"][1])
    labels = rows.groupby("protocol")["seed"].count()
    assert len(rows) == 8 and len(labels) == 2 and set(labels) == {4}, labels
    assert sum("quantize=kmeans" in s and "quantize.bits=3" in s and "quantize.tune_lr=0.002" in s
               for s in set(rows["settings"])) == 1  # fmt: skip
    quantized = rows[rows["protocol"] != rows["base"]]
    assert len(quantized) == 4 and len(set(quantized["protocol"])) == 1
    assert "_quantize=kmeans_bits=3_quantize.epochs=2_t" in quantized["protocol"].iat[0]  # the long label ends hashed
    assert set(rows["base"]) == set(rows.loc[rows["protocol"] == rows["base"], "protocol"])  # the bytes views: side by side
