"""Seconds per model-epoch: the population trainer vs a plain PyTorch loop of the same step, a naive Lightning
loop and the FLOP floor; then the paper's grid (Tables 1-6 at protocol=paper) estimated from measured speeds.

All on the same synthetic MNIST-shaped data (50,000 x 784, batch 100, 784-100-10, fast protocol), in one run,
in float32 and in bf16-mixed precision (each against the floor at its own matmul peak). On a GPU (the default
when CUDA is present) the trainer replays a CUDA graph per step; a row shows it eager too. Two rows time a
population half of which is frozen (done pruning; paper protocol), computing every replica or leaving the frozen
ones out, per model-epoch of those still training.

Then CPU inference latency of exported artefacts: a magnitude-pruned 784-100-10 MLP quantized to 4 bits at ratios
0.1, 0.01 and 0.002, and a LeNet-300-100 at 8 % quantized to 5 bits (Deep Compression's point), written dense, as
CSR and coded: bytes, load time, and batch 1 and 1,000 (median of repeated calls).

    python bench/population_speed.py [--replicas 70] [--epochs 2] [--samples 50000] [--accelerator cpu|gpu]
    python bench/population_speed.py --only inference
"""
import argparse
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nncompress import artefact
from nncompress.artefact.export import export
from nncompress.artefact.latency import median_ms
from nncompress.compression.masks import prune_masks
from nncompress.compression.schedules import PowerSchedule
from nncompress.data.datasets import Splits
from nncompress.data.module import PopulationData
from nncompress.data.precision import PRECISIONS
from nncompress.results import ResultStore
from nncompress.models.mlp import PopulationMLP
from nncompress.population import Population
from nncompress.replicas import changed_options, flatten, read_records
from nncompress.resources import CONF_DIR, conf_options
from nncompress.training.metrics import replica_accuracy
from nncompress.training.module import PopulationClassifier
from nncompress.training.step import compacts
from nncompress.typed import construct

D, H, C, BATCH = 784, 100, 10, 100
CONF = CONF_DIR
FAST, PAPER = (OmegaConf.load(CONF / "protocol" / f"{name}.yaml") for name in ("fast", "paper"))
PAPER_PRUNING = OmegaConf.create(conf_options("pruning", "paper"))  # over fast.yaml, as Hydra merges it
# The paper's six tables as populations of 4 datasets x 5 seeds x the table's ratios (conf/experiment/table*.yaml).
TABLES = {f"table{i}": (100 if i % 2 else 30, 4 * 5 * (14 if i % 2 else 8)) for i in range(1, 7)}


class EpochTimer(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.last = time.perf_counter() - self.start


class FreezeHalf(pl.Callback):
    """From the second epoch on, the first half of the population is frozen, as pruning freezes replicas done."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            R = pl_module.model.replicas
            pl_module.train_only(torch.arange(R) >= R // 2)


def fit(module, epochs, accelerator, precision="32-true", callbacks=(), **data) -> float:
    """Seconds of the last epoch (warm caches, the CUDA graph already captured)."""
    timer = EpochTimer()
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=1, precision=precision, logger=False,
        callbacks=[timer, *callbacks],
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, **data)
    return timer.last


def population(replicas: int, crn: bool) -> Population:
    if crn:  # one seed, `replicas` ratios sharing its stream
        return Population.grid([0], [1.0 - i / (2 * replicas) for i in range(replicas)], crn)
    return Population.grid(list(range(replicas)), [1.0])


def trainer_parts(x, y, pop, protocol, hidden, epochs, precision="32-true", cuda_graph=True, compact=True):
    model = PopulationMLP(pop.streams, pop.per_stream, [D, hidden, C], protocol.activation)
    model.init_([torch.Generator().manual_seed(s) for s in pop.seeds("init")], protocol.init)
    empty = torch.empty(0, D), torch.empty(0, dtype=torch.long)
    data = PopulationData(Splits("synthetic", "synthetic", x, y, *empty, *empty), BATCH, pop.seeds("data"), precision=precision)
    return model, data, PopulationClassifier(model, pop, protocol, epochs, cuda_graph=cuda_graph, compact=compact)


def trainer_epoch(x, y, replicas, epochs, accelerator, precision, crn=False, cuda_graph=True) -> float:
    pop = population(replicas, crn)
    _, data, module = trainer_parts(x, y, pop, FAST, H, epochs, precision, cuda_graph)
    return fit(module, epochs, accelerator, precision, datamodule=data) / replicas


def half_frozen_epoch(x, y, replicas, accelerator, compact: bool) -> float:
    """Seconds per model-epoch of the replicas still training when half the population is frozen."""
    _, data, module = trainer_parts(x, y, population(replicas, False), PAPER, H, 2, compact=compact)
    return fit(module, 2, accelerator, callbacks=[FreezeHalf()], datamodule=data) / (replicas - replicas // 2)


def plain_epoch(x, y, replicas: int, epochs: int, device: str, crn: bool = False) -> float:
    """The same population step as a bare PyTorch loop (no Lightning): each stream's own shuffled batch gathered
    from one tensor, two baddbmm, cross-entropy, autograd.grad, the step's cosine learning rate, fused SGD (no masks:
    the trainer has none either without pruning)."""
    G = 1 if crn else replicas
    P, R = replicas // G, replicas
    x, y = x.to(device), y.to(device)
    params = [torch.randn(G, D, P * H, device=device) * math.sqrt(2 / D), torch.zeros(G, 1, P * H, device=device),
              torch.randn(R, H, C, device=device) * math.sqrt(2 / H), torch.zeros(R, 1, C, device=device)]  # fmt: skip
    params = [p.requires_grad_() for p in params]
    lr = torch.tensor(FAST.lr, device=device)  # a tensor the step rewrites, as the trainer's
    opt = torch.optim.SGD(params, lr=lr, momentum=FAST.momentum, nesterov=True, fused=True)
    generators = [torch.Generator().manual_seed(g) for g in range(G)]
    n, sync = len(x), torch.cuda.synchronize if device == "cuda" else lambda: None
    step, total = torch.zeros((), device=device), epochs * -(-n // BATCH)
    for _ in range(epochs):
        sync()
        start = time.perf_counter()
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        for i in range(0, n, BATCH):
            idx = order[:, i : i + BATCH]
            B = idx.shape[1]
            xb, yb = x.index_select(0, idx.reshape(-1)).view(G, B, D), y.index_select(0, idx.reshape(-1)).view(G, B)
            h = torch.relu(torch.baddbmm(params[1], xb, params[0])).view(G, B, P, H).transpose(1, 2).reshape(R, B, H)
            z = torch.baddbmm(params[3], h, params[2])
            loss = F.cross_entropy(z.reshape(-1, C), yb.repeat_interleave(P, 0).reshape(-1), reduction="sum") / B
            for p, g in zip(params, torch.autograd.grad(loss, params)):
                p.grad = g
            lr.copy_(FAST.lr * 0.5 * (1 + torch.cos(math.pi * step / total)))
            opt.step()
            step.add_(1)
        sync()
        last = time.perf_counter() - start
    return last / replicas


class NaiveMLP(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, C))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=FAST.lr, momentum=FAST.momentum, nesterov=True)


def naive_epoch(x, y, epochs: int, accelerator: str) -> float:
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    return fit(NaiveMLP(), epochs, accelerator, train_dataloaders=loader)


def matmul_peak_gflops(device: str, dtype: torch.dtype, seconds: float = 0.5) -> float:
    """Square matmuls repeated for about `seconds`, as large as 2048 or as one takes 0.05 s (a CPU without native
    bfloat16 runs them tens of times slower than float32)."""
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    n = 256
    while True:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        start = time.perf_counter()
        a @ b
        sync()
        if n >= 2048 or time.perf_counter() - start > 0.05:
            break
        n *= 2
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        sync()
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def floor_epoch(peak_gflops: float, n: int) -> float:
    """Dense FLOPs of one model-epoch: forward and weight gradients of both layers, input gradient of the
    second (the first layer's input needs none), divided by the measured matmul peak."""
    weights = D * H + H * C
    flops = n * (2 * weights + 2 * weights + 2 * H * C)
    return flops / (peak_gflops * 1e9)


def computed_epochs(epochs: list[int]) -> float:
    """Epochs per replica a population computes whose replicas need `epochs` each: it computes every replica
    until the step stops computing the frozen ones (training/step.py's `compacts`), and so on."""
    trained, total = len(epochs), 0
    for epoch in range(max(epochs)):
        active = sum(e > epoch for e in epochs)
        trained = active if compacts(active, trained) else trained
        total += trained
    return total / len(epochs)


def stored_epochs(results: str) -> dict[str, list[int]]:
    """Per table, the epochs each stored MNIST replica trained at protocol=paper as it is (no option changed)."""
    paper = flatten({"protocol": {k: v for k, v in OmegaConf.to_container(PAPER).items() if k != "defaults"},
                     "pruning": {"timing": OmegaConf.to_container(PAPER_PRUNING.timing)}})  # fmt: skip
    out = {}
    stored = Path(results).is_dir() and any(ResultStore(results).entries())  # none yet: the schedule's epochs
    for record in read_records(results)[0] if stored else []:
        config, got = record["config"], flatten(record["config"])
        if record["dataset"] == "mnist" and config.get("experiment") in TABLES and not changed_options(config, "method") \
                and all(got.get(k, v) == v for k, v in paper.items()):  # fmt: skip
            out.setdefault(config["experiment"], []).append(record["epochs"])
    return out


def paper_grid_estimate(accelerator: str, samples: int, results: str) -> str:
    """Tables 1-6 at protocol=paper, one process per table, each epoch 500 steps plus one training-accuracy pass
    (the pruning trigger), measured on `samples` synthetic images and scaled to the paper's 50,000. Each replica
    trains the epochs the stored MNIST replicas of its table trained (`results`; without any, the schedule's
    maximum: 15 steps 25 epochs apart, then 50): with every replica computed until the slowest ends, and with the
    frozen ones left out as the step does (on a GPU a smaller population runs less than proportionally faster, so
    that figure is a lower bound there)."""
    longest = construct(PAPER_PRUNING.timing).max_epochs(PowerSchedule().steps)
    measured = stored_epochs(results)
    x, y = torch.rand(samples, D), torch.randint(0, C, (samples,))
    total, compacted, parts = 0.0, 0.0, []
    for name, (hidden, replicas) in TABLES.items():
        pop = Population.grid(list(range(replicas)), [1.0])
        model, data, module = trainer_parts(x, y, pop, PAPER, hidden, 2)
        step_s = fit(module, 2, accelerator, datamodule=data) / math.ceil(samples / BATCH)
        start = time.perf_counter()
        replica_accuracy(model, data.eval_batches("train")).cpu()  # synced
        eval_s = time.perf_counter() - start
        epoch_s = 500 * step_s + eval_s * 50_000 / samples
        epochs = measured.get(name, [longest])
        total += max(epochs) * epoch_s
        compacted += computed_epochs(epochs) * epoch_s
        parts.append(f"{name} R={replicas} H={hidden}: {1000 * step_s:.2f} ms/step, {epoch_s:.2f} s/epoch "
                     f"({100 * (1 - 500 * step_s / epoch_s):.0f} % accuracy pass), epochs: "
                     + (f"{len(epochs)} stored, mean {sum(epochs) / len(epochs):.0f}, max {max(epochs)}, "
                        f"computed {computed_epochs(epochs):.0f}" if name in measured else f"{longest} (none stored)"))  # fmt: skip
    return (f"paper grid: {total / 60:.1f} min computing every replica until its table's slowest ends, "
            f"{compacted / 60:.1f} min leaving out the frozen\n   " + "\n   ".join(parts))


def inference_rows(sizes=(D, H, C), ratios=(0.1, 0.01, 0.002), bits=4, batches=(1, 1000)) -> list[str]:
    """One MLP of these layer `sizes` pruned to each ratio by global magnitude, its non-zero weights rounded to
    2^`bits` levels per layer (what quantization leaves), exported dense, as CSR and coded (the same weights), each
    loaded and timed; and the bytes of the coded file of the unquantized weights."""
    pop = Population.grid([0], list(ratios))
    model = PopulationMLP(pop.streams, pop.per_stream, list(sizes), "relu")
    model.init_([torch.Generator().manual_seed(s) for s in pop.seeds("init")], "kaiming")
    scores = [layer.replica_weight().abs() for layer in model.layers]
    masks = prune_masks(scores, [layer.replica_mask() for layer in model.layers], 1 - torch.tensor(ratios))
    for layer, mask in zip(model.layers, masks):
        layer.set_replica_mask_(mask)
    x = {b: torch.rand(b, sizes[0]) for b in batches}
    kinds = ("dense", "CSR", "coded")
    rows = [f"{'-'.join(map(str, sizes))}, {bits}-bit weights", f"{'ratio':>6} {'unquantized coded bytes':>24} " + " ".join(f"{f'{k} bytes':>11}" for k in kinds)
            + f" {'load ms CSR':>12} {'coded':>6} " + " ".join(f"{f'{k} ms b={b}':>{len(k) + 9}}" for b in batches for k in kinds)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        records = []
        for r, ratio in enumerate(ratios):
            # Random inputs; the record only has to pass the artefact schema (a 16-hex key, a known dataset).
            records.append({"key": f"{r:016x}", "seed": 0, "ratio": ratio, "dataset": "mnist",
                            "config": {"method": {"name": "magl1"}, "model": {"name": "mlp"}, "protocol": {"name": "fast"},
                                       "dataset": {"name": "mnist"}}})  # fmt: skip
        standardization = (torch.tensor(0.13), torch.tensor(0.31))
        lossless = [export(Path(tmp) / f"{r}.safetensors", model, r, rec, standardization) for r, rec in enumerate(records)]
        quantize_(model, 1 << bits)
        for r, ratio in enumerate(ratios):
            nbytes, models, load_ms = [], [], []
            for kind in kinds:
                path = Path(tmp) / f"{r}{kind}.safetensors"
                nbytes.append(export(path, model, r, records[r], standardization, dense=kind == "dense", coded=kind == "coded"))
                models.append(artefact.load(path))
                load_ms.append(median_ms(lambda _: artefact.load(path), None, repeats=20, warmup=2))
            cells = [f"{median_ms(m, x[b], repeats=200 if b == 1 else 50):>{len(k) + 9}.4f}" for b in batches for k, m in zip(kinds, models)]
            rows.append(f"{ratio:>6g} {lossless[r]:>24} " + " ".join(f"{n:>11}" for n in nbytes)
                        + f" {load_ms[1]:>12.2f} {load_ms[2]:>6.2f} " + " ".join(cells))  # fmt: skip
    return rows


@torch.no_grad()
def quantize_(model, levels: int) -> None:
    """Each replica's non-zero weights, per layer, rounded to the nearest of `levels` evenly spaced values between
    their extremes (a stand-in for k-means: what the file stores is the same, few distinct values)."""
    for layer in model.layers:
        w = layer.replica_weight()
        q = torch.zeros_like(w)
        for r, wr in enumerate(w):
            nz = wr[wr != 0]
            grid = torch.linspace(float(nz.min()), float(nz.max()), levels)
            q[r] = torch.where(wr != 0, grid[(wr.unsqueeze(-1) - grid).abs().argmin(-1)], wr)
        layer.weight.copy_(layer.from_replicas(q))


def main():
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)  # no per-fit banners between the rows
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=70)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--grid-samples", type=int, default=5_000, help="images the paper-grid estimate times on")
    parser.add_argument("--results", default=os.environ.get("NNCOMPRESS_RESULTS_DIR", "multirun/results"),
                        help="results store whose replicas' epochs the paper-grid estimate uses")  # fmt: skip
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", help="comma-separated (default: 32-true, and bf16-mixed where bfloat16 is "
                        "native: a GPU, or a CPU with AVX-512)")  # fmt: skip
    parser.add_argument("--inference-threads", type=int, default=1, help="threads for the inference part (one: "
                        "latency medians stay meaningful on a machine shared with other work)")  # fmt: skip
    parser.add_argument("--only", choices=("training", "inference"), help="run one part of the benchmark")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.only != "inference":
        training(args)
    if args.only != "training":
        torch.set_num_threads(args.inference_threads)
        print(f"-- CPU inference, artefacts of magnitude-pruned quantized MLPs, {torch.get_num_threads()} threads, "
              "median ms per load or call")
        print("\n".join(inference_rows() + inference_rows((D, 300, 100, C), (0.08,), bits=5)))


def training(args):
    x, y = torch.rand(args.samples, D), torch.randint(0, C, (args.samples,))
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    R, e, acc = args.replicas, args.epochs, args.accelerator
    naive = naive_epoch(x, y, e, acc)
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu, threads {torch.get_num_threads()}"
    print(f"\n{name}, {args.samples} x {D}, batch {BATCH}, {D}-{H}-{C}")
    print(f"{'trainer':<50} {'s / model-epoch':>16} {'vs naive':>9} {'vs floor':>9} {'vs plain':>9}")
    native_bf16 = device == "cuda" or "AVX512" in torch.backends.cpu.get_cpu_capability()
    precisions = args.precisions.split(",") if args.precisions else ["32-true"] + ["bf16-mixed"] * native_bf16
    for precision in precisions:
        dtype = getattr(torch, PRECISIONS[precision])
        peak = matmul_peak_gflops(device, dtype)
        floor = floor_epoch(peak, args.samples)
        rows = {f"dense FLOP floor ({peak:.0f} GFLOP/s {dtype})": (floor, None)}
        if precision == "32-true":
            for crn in (False, True):
                suffix = ", common random numbers" if crn else ""
                plain = plain_epoch(x, y, R, e, device, crn)
                rows[f"plain PyTorch loop R={R}{suffix}"] = (plain, plain)
                rows[f"population R={R}{suffix}"] = (trainer_epoch(x, y, R, e, acc, precision, crn), plain)
            if device == "cuda":
                rows[f"population R={R}, eager (no CUDA graph)"] = (trainer_epoch(x, y, R, e, acc, precision, cuda_graph=False), None)
            for compact in (False, True):  # per model-epoch of the replicas still training
                rows[f"paper, R={R}, half frozen, {'frozen left out' if compact else 'all computed'}"] = (
                    half_frozen_epoch(x, y, R, acc, compact), None)  # fmt: skip
        else:
            rows[f"population R={R}"] = (trainer_epoch(x, y, R, e, acc, precision), None)
            rows[f"population R={R}, common random numbers"] = (trainer_epoch(x, y, R, e, acc, precision, True), None)
        rows["population R=1"] = (trainer_epoch(x, y, 1, e, acc, precision), None)
        if precision == "32-true":
            rows["naive Lightning + DataLoader"] = (naive, None)
        print(f"-- precision {precision}")
        for row, (sec, plain) in rows.items():
            vs_plain = f"{sec / plain:>8.2f}x" if plain else ""
            print(f"{row:<50} {sec:>16.4f} {naive / sec:>8.1f}x {sec / floor:>8.2f}x {vs_plain:>9}")
    print("-- " + paper_grid_estimate(acc, args.grid_samples, args.results))


if __name__ == "__main__":
    main()
