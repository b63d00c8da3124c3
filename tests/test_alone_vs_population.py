"""A replica trains the same alone or among others, in every model family: all it draws (data order, init,
hashes, dropout masks, random pruning scores) comes from its own stream's seeds, never from a generator its
population shares."""
import json

import torch

from nncompress.artefact import file, formats

from conftest import TINY, run_train

# family: (its overrides, the population a replica trains in alone, a larger one around it)
FAMILIES = {
    "dense MLP": ([], ["seeds=[0]"], ["seeds=[0,1,2]"]),
    "MagL1 MLP": (["method=magl1"], ["ratio=[0.1]"], ["seeds=[0,1]", "ratio=[0.1,0.05]"]),
    "MagL1 MLP, common random numbers": (["method=magl1", "common_random_numbers=true"], ["ratio=[0.1,0.05]"],
                                         ["seeds=[0,1]", "ratio=[0.1,0.05]"]),  # fmt: skip
    "OBD MLP": (["method=obd"], ["ratio=[0.1]"], ["seeds=[0,1]", "ratio=[0.1,0.05]"]),
    "OBS MLP": (["method=obs"], ["ratio=[0.1]"], ["seeds=[0,1]", "ratio=[0.1,0.05]"]),
    "random MLP": (["method=random"], ["ratio=[0.1]"], ["seeds=[0,1]", "ratio=[0.1,0.05]"]),
    "SNIP MLP": (["method=snip"], ["ratio=[0.1]"], ["seeds=[0,1]", "ratio=[0.1,0.05]"]),
    "HashedNet": (["model=hashednet"], ["ratio=[0.1]"], ["seeds=[0,1]", "ratio=[0.1,0.05]"]),
    # buckets pruned, in random order (its own draws): the population pads each replica's buckets to the most any has
    "random HashedNet": (["model=hashednet", "method=random", "pruning.keep=0.5"], ["ratio=[0.05]"],
                         ["seeds=[0,1]", "ratio=[0.1,0.05]"]),  # fmt: skip
    "ConvNet with dropout": (["model=convnet", "model.dropout=0.2"], ["seeds=[0]"], ["seeds=[0,1,2]"]),
}
# One pruning step after the first epoch, then one more epoch (methods that prune).
PRUNING = ["pruning.timing.first_epoch=0", "pruning.timing.every=1", "pruning.timing.final_epochs=1", "schedule.steps=1"]


def weights(path) -> dict[str, torch.Tensor]:
    """An artefact's tensors, a coded file's decoded (its streams differ wherever a weight's rounding does)."""
    tensors, config = file.read(path)
    if not config["format"].startswith("coded-"):
        return tensors
    decoded = formats.decoded_layers(path, tensors, config)
    return {f"layers.{i}.{part}": t for i, layer in enumerate(decoded) for part, t in zip(("positions", "values", "bias"), layer)}


def records(run_dir) -> dict[str, dict]:
    return {r["key"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}


def test_a_replica_trains_the_same_alone_or_in_a_population(tmp_path):
    """Each family's replicas alone, then among others, as one multirun (one process); each replica's record
    and exported weights must match. Not bit for bit: the fused SGD step rounds a tensor's SIMD body and its
    scalar tail differently, and where a replica's entries fall depends on the population's size; the grouped
    convolution's weight gradient sums in another order for R groups than for one. So the weights are held to
    float32 rounding (assert_close's defaults; 2.6e-6 at most seen) and the accuracies to one example at most
    (a prediction those roundings could flip; none seen). A replica drawing from a shared generator (dropout
    masks before) differs by far more."""
    assert_alone_as_among(FAMILIES, tmp_path)


def assert_alone_as_among(families: dict, tmp_path, tiny=TINY) -> None:
    """Train each of `families` (as FAMILIES) alone, then among others, in one multirun; see the test above."""
    examples = {split: int(o.split("=")[1]) for o in tiny for split in ("train", "test") if o.startswith(f"dataset.{split}_size=")}
    parts = [own + size for own, *sizes in families.values() for size in sizes]
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "alone_or_among.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/sweeper: union\nhydra:\n  sweeper:\n    parts:\n"
        + "".join(f"      - {json.dumps(part)}\n" for part in parts)
    )
    sweep = tmp_path / "sweep"
    # One thread: these tiny steps gain nothing from more, and on a busy machine OpenMP's waiting threads made
    # this test four times slower (80 s instead of 20 s).
    # Each job its own store, whose artefacts/ then holds that job's export of a replica both jobs train.
    proc = run_train("-m", f"--config-dir={tmp_path / 'conf'}", "+experiment=alone_or_among", *tiny, *PRUNING,
                     "export=true", "results_dir=${hydra:runtime.output_dir}/store", f"hydra.sweep.dir={sweep}",
                     env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for i, family in enumerate(families):  # parts run in order: job 2i alone, 2i + 1 among others
        alone_dir, among_dir = sweep / str(2 * i), sweep / str(2 * i + 1)
        alone, among = records(alone_dir), records(among_dir)
        assert alone.keys() < among.keys(), family
        for key, record in alone.items():
            other, name = among[key], f"{family}, seed {record['seed']}, ratio {record['ratio']}"
            assert other["nonzero_weights"] == record["nonzero_weights"], name
            for split, n in examples.items():
                got, want = round(n * other[f"{split}_acc"]), round(n * record[f"{split}_acc"])
                assert abs(got - want) <= 1, f"{name}: {split} accuracy {got} vs {want} of {n} alone"
            exported = [weights(d / "store" / "artefacts" / f"{key}.safetensors") for d in (among_dir, alone_dir)]
            torch.testing.assert_close(*exported, msg=lambda m: f"{name}: weights differ from alone: {m}")
