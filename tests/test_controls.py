"""The random-pruning controls (`method=random`, `method=random_layer`) and SNIP (`method=snip`): what each keeps,
that random scores are a replica's own, SNIP's scores against autograd on plain nets, SNIP's one step before
training in a real run, and the report reading all three as methods the paper did not test."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nncompress import config, load_results
from nncompress.compression.pruning import Pruning
from nncompress.compression.saliency import SNIP, Random
from nncompress.compression.schedules import CubicSchedule, Timing
from nncompress.data.module import EvalBatches
from nncompress.population import Population
from nncompress.report.claims import comparisons
from nncompress.resources import CONF_DIR

from conftest import NamedStore, run_train
from test_population_model import make, plain_nets
from test_pruning import ToyHost

SIZES = (20, 16, 3)  # a 20-16-3 MLP: layers of 320 and 48 weights
EVERY_EPOCH = Timing(first_epoch=0, every=1, threshold=None, final_epochs=1)  # steps at the start of epochs 0, 1, 2


def composed(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=["logger=none", *overrides])


def pruned(method: str, ratios: list[float], seeds=(0,)) -> tuple[Pruning, ToyHost]:
    """A toy population pruned by `method` as its config builds it (criterion, scope), three steps, to `ratios`."""
    parts = config.build(composed(f"method={method}", "pruning.timing.first_epoch=0", "schedule.steps=3"))
    population, model = make(list(seeds), ratios, False, sizes=SIZES)
    host = ToyHost(model, torch.ones(population.size))
    pruning = parts.pruning(saliency=parts.saliency, population=population)
    for epoch in range(3):
        pruning.epoch_start(host, epoch)
    return pruning, host


def test_random_keeps_the_target_fraction_over_all_layers_and_random_layer_in_each_layer():
    ratios, sizes = [0.5, 0.1, 0.01], [SIZES[0] * SIZES[1], SIZES[1] * SIZES[2]]
    (pruning, host), (per_layer, layer_host) = pruned("random", ratios), pruned("random_layer", ratios)
    assert (pruning.scope, per_layer.scope) == ("global", "layer")
    assert [e["step"] for e in pruning.history] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    kept = [m.sum((1, 2)).tolist() for m in host.masks()]
    assert [a + b for a, b in zip(*kept)] == [round(r * sum(sizes)) for r in ratios]  # exactly, over both layers
    assert kept[1] != [round(r * sizes[1]) for r in ratios]  # a global ranking does not keep each layer's share
    for n, mask in zip(sizes, layer_host.masks()):
        assert mask.sum((1, 2)).tolist() == [n - round((1 - r) * n) for r in ratios]  # exactly, in each layer


def test_random_scores_are_a_replicas_own_whatever_its_population_and_after_a_resume():
    def scores(population: Population, replicas: list[int]) -> list[torch.Tensor]:
        criterion = Random()
        criterion.start(population)
        _, model = make([0], [1.0] * len(replicas), False, sizes=SIZES)
        return criterion.scores(model, None, "cross_entropy", replicas)

    among = Population.grid([0, 1], [0.1, 0.05])  # seed 1 ratio 0.05 is replica 3 here, replica 0 alone
    alone = Population.grid([1], [0.05])
    for a, b in zip(scores(among, [3]), scores(alone, [0])):
        assert torch.equal(a, b)
    first, again = scores(among, [0, 1, 2, 3]), scores(among, [0, 1, 2, 3])
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # deterministic: the same at every step
    assert len({tuple(s[:, 0, 0].tolist()) for s in first}) == 2 and len(set(first[0][:, 0, 0].tolist())) == 4
    crn = scores(Population.grid([0, 1], [0.1, 0.05], common_random_numbers=True), [0, 1, 2, 3])
    assert torch.equal(crn[0][0], crn[0][1]) and not torch.equal(crn[0][0], crn[0][2])  # a seed's ratios share it
    # A job resumed from a checkpoint: a new criterion and Pruning loading the state, then the third step.
    build = lambda: Pruning(Random(), CubicSchedule(3), EVERY_EPOCH, Population.grid([0, 1], [0.1]))  # noqa: E731
    population, model = make([0, 1], [0.1], False, sizes=SIZES)
    whole, host = build(), ToyHost(model, torch.ones(2))
    for epoch in range(2):
        whole.epoch_start(host, epoch)
    resumed, resumed_host = build(), ToyHost(copy.deepcopy(model), torch.ones(2))
    resumed.load_state_dict(copy.deepcopy(whole.state_dict()))
    whole.epoch_start(host, 2)
    resumed.epoch_start(resumed_host, 2)
    for a, b in zip(host.masks(), resumed_host.masks()):
        assert torch.equal(a, b) and (~a).any()


@pytest.mark.parametrize("loss, activation", [("mse", "sigmoid"), ("cross_entropy", "relu")])
@pytest.mark.parametrize("crn", [False, True])
def test_snip_scores_are_grad_times_weight_of_the_training_loss_as_autograd_gives_it(loss, activation, crn):
    """Against each replica as a plain net: the loss over all 23 samples at once, by torch's own functions, and
    autograd's gradient; SNIP walks batches of 7 (the last one of 2) and the population at once."""
    population, model = make([0, 1], [1.0, 0.5], crn, activation, "kaiming", sizes=(6, 5, 4))
    x, y = torch.randn(23, 6, generator=torch.Generator().manual_seed(1)), torch.arange(23) % 4
    got = SNIP().scores(model, EvalBatches(x, y, 7), loss, list(range(population.size)))
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu}[activation]
    for r, (hidden, out) in enumerate(plain_nets(model)):
        z = out(act(hidden(x)))
        if loss == "mse":
            value = 0.5 * (torch.sigmoid(z) - F.one_hot(y, 4).float()).pow(2).sum(1).mean()
        else:
            value = F.cross_entropy(z, y)
        grads = torch.autograd.grad(value, [hidden.weight, out.weight])
        for score, lin, grad in zip(got, (hidden, out), grads):
            torch.testing.assert_close(score[r], (grad * lin.weight).abs().T.detach())
    assert crn or not torch.equal(got[0][0], got[0][1])  # replicas of other seeds: other weights, other scores


def test_snip_and_the_controls_compose_as_their_files_say():
    fast, paper = (composed("method=snip", f"protocol={p}").pruning for p in ("fast", "paper"))
    for node, epochs in ((fast, 15), (paper, 100)):  # one step before training, then the protocol's epochs
        assert (node.timing.first_epoch, node.schedule.steps, node.timing.final_epochs) == (0, 1, epochs)
        assert node.timing.threshold is None and node.scope == "global"
    assert composed("method=snip", "protocol.epochs=7").pruning.timing.final_epochs == 7
    for method, scope in (("random", "global"), ("random_layer", "layer"), ("magl1", "global")):
        cfg = composed(f"method={method}", "protocol=paper")
        assert cfg.pruning.scope == scope and cfg.pruning.timing.first_epoch == 50  # the protocol's timing
        assert OmegaConf.to_container(cfg.method.regularizer)["_target_"].endswith(".L1" if method == "magl1" else ".L2")
    assert composed("method=random_layer", "pruning.scope=global").pruning.scope == "global"  # the command line wins


def test_snip_prunes_once_before_the_first_epoch_to_the_target_ratio(tmp_path, results_dir):
    run = run_train("method=snip", "ratio=[0.1,0.02]", "seeds=[0,1]", "dataset.train_size=600",
                    "dataset.test_size=300", "protocol.epochs=2", "logger=none", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    total = 784 * 100 + 100 * 10
    assert sorted((r["ratio"], r["nonzero_weights"]) for r in records) == [(0.02, round(0.02 * total))] * 2 + [
        (0.1, round(0.1 * total))] * 2  # fmt: skip
    for r in records:
        assert (r["pruning_steps"], r["last_pruning_epoch"], r["epochs"]) == (1, 0, 2), r
    steps = [json.loads(line) for line in (tmp_path / "pruning.jsonl").read_text().splitlines()]
    assert [(s["epoch"], s["step"]) for s in steps] == [(0, 1)] * 4
    assert sorted(round(s["sparsity"], 9) for s in steps) == [0.9, 0.9, 0.98, 0.98]
    assert all(s["train_acc_before"] < 0.3 for s in steps)  # untrained: about chance
    after = {(s["seed"], s["ratio"]): s["train_acc_after"] for s in steps}
    assert all(r["train_acc"] > after[r["seed"], r["ratio"]] + 0.1 for r in records)  # then trained, pruned


def test_the_report_reads_the_new_methods_beside_the_papers_under_the_plain_protocol_name(tmp_path):
    """Records as a run at `protocol=fast` writes them (configs composed, resolved): snip's own timing and
    random_layer's own scope are the method's, not a variant of the protocol, so all meet magl1 in its cells."""
    store = NamedStore(tmp_path / "store")
    methods = {"magl1": 0.95, "random": 0.90, "random_layer": 0.89, "snip": 0.93}
    for method, acc in methods.items():
        cfg = OmegaConf.to_container(composed(f"method={method}"), resolve=True)
        for seed in range(3):
            store.put({"key": f"{method}-{seed}", "dataset": "mnist", "source": "original", "ratio": 0.01,
                       "seed": seed, "test_acc": acc + seed / 1000, "parameters": 904,
                       "config": {**cfg, "seeds": [seed], "ratio": 0.01}})  # fmt: skip
    runs = load_results(store.root)
    assert set(runs["protocol"]) == {"fast"} and set(runs["settings"]) == {""}
    table = comparisons(runs).set_index("comparison")
    for method in ("random", "random_layer", "snip"):
        assert table.loc[f"{method} vs magl1", "claim"] == f"{method} >= magl1"
        assert table.loc[f"{method} vs magl1", "n"] == "3 pairs"
