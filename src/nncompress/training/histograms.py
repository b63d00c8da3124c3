"""Weight histograms of every replica after given epochs (the paper's Figure 6), for any model with layers."""
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from ..loggers import log_histograms


class WeightHistograms(pl.Callback):
    """After each of `epochs`, each replica's histogram of its non-zero weights (all layers): saved to
    `histograms/epoch<N>.npz` in the run directory and logged to the experiment logger."""

    def __init__(self, epochs, run_dir: Path, names: list[str], bins: int = 200):
        self.epochs, self.run_dir, self.names, self.bins = set(epochs), run_dir, names, bins
        self.saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # epoch -> (counts, edges), for a checkpoint

    def state_dict(self) -> dict:
        return {"saved": self.saved}

    def load_state_dict(self, state_dict: dict) -> None:
        """The histograms saved before a checkpoint, written again in this run's directory (the figure reads a
        replica's from the run that recorded it)."""
        for epoch, (counts, edges) in state_dict["saved"].items():
            self.save(epoch, counts, edges)

    @torch.no_grad()
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch not in self.epochs:
            return
        layers = pl_module.model.layers
        weights = torch.cat([layer.replica_weight().flatten(1) for layer in layers], 1).cpu().numpy()
        counts, edges = zip(*(np.histogram(w[w != 0], bins=self.bins) for w in weights))
        self.save(epoch, torch.from_numpy(np.stack(counts)), torch.from_numpy(np.stack(edges)))
        log_histograms(trainer.logger, {f"weights/{n}": h for n, h in zip(self.names, zip(counts, edges))}, epoch)

    def save(self, epoch: int, counts: torch.Tensor, edges: torch.Tensor) -> None:
        path = self.run_dir / "histograms" / f"epoch{epoch}.npz"
        path.parent.mkdir(exist_ok=True)
        np.savez(path, counts=counts.numpy(), edges=edges.numpy(), replicas=self.names)
        self.saved[epoch] = counts, edges
