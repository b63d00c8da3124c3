"""Seconds per model-epoch: the population trainer (R = 1 and R = 70) vs a naive Lightning loop vs the FLOP floor.

All on the same synthetic MNIST-shaped data (50,000 x 784, batch 100, 784-100-10, fast protocol), in one run,
in float32 and in bf16-mixed precision (each against the floor at its own matmul peak):

    python bench/population_speed.py [--replicas 70] [--epochs 2] [--samples 50000] [--accelerator cpu|gpu]
"""
import argparse
import math
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nncompress.data.datasets import Splits
from nncompress.data.module import PRECISIONS, PopulationData
from nncompress.models.mlp import PopulationMLP
from nncompress.population import Population
from nncompress.training.module import PopulationClassifier

D, H, C, BATCH = 784, 100, 10, 100
PROTOCOL = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "protocol" / "fast.yaml")


class EpochTimer(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.last = time.perf_counter() - self.start


def fit(module, timer, epochs, accelerator, precision="32-true", **data):
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=1, precision=precision, logger=False, callbacks=[timer],
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, **data)
    return timer.last  # the last epoch: warm caches, no first-call overhead


def population_epoch(x, y, replicas: int, epochs: int, accelerator: str, precision: str, crn: bool = False) -> float:
    if crn:  # one seed, `replicas` ratios sharing its stream
        pop = Population.grid([0], [1.0 - i / (2 * replicas) for i in range(replicas)], crn)
    else:
        pop = Population.grid(list(range(replicas)), [1.0])
    model = PopulationMLP(pop.streams, pop.per_stream, [D, H, C], PROTOCOL.activation)
    model.init_([torch.Generator().manual_seed(s) for s in pop.seeds("init")], PROTOCOL.init)
    empty = torch.empty(0, D), torch.empty(0, dtype=torch.long)
    splits = Splits("synthetic", "synthetic", x, y, *empty, *empty)
    data = PopulationData(splits, BATCH, pop.seeds("data"), precision=precision)
    module = PopulationClassifier(model, pop, PROTOCOL, math.ceil(len(x) / BATCH), epochs)
    return fit(module, EpochTimer(), epochs, accelerator, precision, datamodule=data) / replicas


class NaiveMLP(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, C))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=PROTOCOL.lr, momentum=PROTOCOL.momentum, nesterov=True)


def naive_epoch(x, y, epochs: int, accelerator: str) -> float:
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    return fit(NaiveMLP(), EpochTimer(), epochs, accelerator, train_dataloaders=loader)


def matmul_peak_gflops(device: str, dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    repeats = 10 if device == "cpu" else 200
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    for _ in range(2):  # the second pass is timed
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        elapsed = time.perf_counter() - start
    return 2 * n**3 * repeats / elapsed / 1e9


def floor_epoch(peak_gflops: float, n: int) -> float:
    """Dense FLOPs of one model-epoch: forward and weight gradients of both layers, input gradient of the
    second (the first layer's input needs none), divided by the measured matmul peak."""
    weights = D * H + H * C
    flops = n * (2 * weights + 2 * weights + 2 * H * C)
    return flops / (peak_gflops * 1e9)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=70)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = torch.rand(args.samples, D), torch.randint(0, C, (args.samples,))
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    R, e, acc = args.replicas, args.epochs, args.accelerator
    naive = naive_epoch(x, y, e, acc)
    print(f"\n{device}, threads {torch.get_num_threads()}, {args.samples} x {D}, batch {BATCH}, {D}-{H}-{C}")
    print(f"{'trainer':<50} {'s / model-epoch':>16} {'vs naive':>9} {'vs floor':>9}")
    for precision, dtype in PRECISIONS.items():
        peak = matmul_peak_gflops(device, dtype)
        floor = floor_epoch(peak, args.samples)
        rows = {
            f"dense FLOP floor ({peak:.0f} GFLOP/s {dtype})": floor,
            f"population R={R}": population_epoch(x, y, R, e, acc, precision),
            f"population R={R}, common random numbers": population_epoch(x, y, R, e, acc, precision, crn=True),
            "population R=1": population_epoch(x, y, 1, e, acc, precision),
        }
        if precision == "32-true":
            rows["naive Lightning + DataLoader"] = naive
        print(f"-- precision {precision}")
        for name, sec in rows.items():
            print(f"{name:<50} {sec:>16.4f} {naive / sec:>8.1f}x {sec / floor:>8.2f}x")


if __name__ == "__main__":
    main()
