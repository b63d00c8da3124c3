"""method=obs: Optimal Brain Surgeon on the layer-wise Hessian (compression/layerwise.py, saliency.OBS), each piece
against numpy on the formulas: H = XᵀX / n + λI, scores w²/[H⁻¹]_qq, and the closed-form row update
δw = -H⁻¹[:, P] (H⁻¹[P, P])⁻¹ w_P, through the criterion alone, through a real training step, and a whole run."""
import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from nncompress.compression.masks import prune_masks
from nncompress.compression.saliency import OBS, Magnitude
from nncompress.compression.schedules import Timing
from nncompress.config import check_family
from nncompress.data.module import EvalBatches
from nncompress.errors import UserError
from nncompress.models.factory import MLP
from nncompress.models.mlp import PopulationMLP

from conftest import run_train
from test_pruning import tiny_fit

DAMP = 0.01


def hessian(x: np.ndarray, damp: float = DAMP) -> np.ndarray:
    """XᵀX / n, dampened by damp × its mean diagonal (the formula, in float64)."""
    h = x.T @ x / len(x)
    return h + damp * np.mean(np.diag(h)) * np.eye(len(h))


def surgeon(w: np.ndarray, keep: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Each row (column j of w (in, out)) with its pruned set P: w + δw, δw = -H⁻¹[:, P] (H⁻¹[P, P])⁻¹ w_P, w_P = 0."""
    h_inv = np.linalg.inv(h)
    out = w.astype(np.float64).copy()
    for j in range(w.shape[1]):
        p = np.flatnonzero(~keep[:, j])
        if len(p):
            out[:, j] -= h_inv[:, p] @ np.linalg.solve(h_inv[np.ix_(p, p)], out[p, j])
            out[p, j] = 0.0
    return out


def layer(weights: np.ndarray) -> PopulationMLP:
    """One population layer (R, in, out) with these weights: in -> out, no hidden layer."""
    R, n_in, n_out = weights.shape
    model = PopulationMLP(R, 1, [n_in, n_out], "relu")
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor(weights, dtype=torch.float32))
        model.layers[0].bias.zero_()
    return model


def batches(x: np.ndarray) -> EvalBatches:
    """x (n, in) read by every replica, or (R, n, in), one input stream per replica; batches of 7."""
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.zeros(x.shape[:-1], dtype=torch.long)
    return EvalBatches(x, y, 7, None if x.dim() == 2 else torch.arange(len(x)))


RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4)).astype(np.float32) @ np.diag([1.0, 3.0, 0.3, 1.0]).astype(np.float32)
X[:, 3] = X[:, 0] + 0.1 * X[:, 3]  # correlated inputs: what the update compensates through
W = RNG.normal(size=(2, 4, 3)).astype(np.float32)
# Per replica and row (column): replica 0 prunes one input per row (solved on P), replica 1 three (solved on K).
KEEP = np.array([[[0, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 0]],
                 [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0]]], dtype=bool)  # fmt: skip


@pytest.mark.parametrize("shared", [True, False])
def test_the_row_update_is_the_closed_form_on_a_4x3_layer(shared):
    """Replicas reading one input (one H) or each its own (per-replica H: here the second reads 2 X)."""
    x = X if shared else np.stack([X, 2 * X[::-1]])
    got = OBS(damp=DAMP).compensate(layer(W), [torch.tensor(KEEP)], batches(x), "cross_entropy", [0, 1])[0]
    for r in range(2):
        h = hessian((x if shared else x[r]).astype(np.float64))
        np.testing.assert_allclose(got[r].numpy(), surgeon(W[r], KEEP[r], h), rtol=1e-5, atol=1e-6)
        assert (got[r].numpy()[~KEEP[r]] == 0).all()


def test_an_entry_pruned_before_stays_zero_and_constrains_the_update():
    """A weight a former step pruned (0, not kept) is held at 0 by the update, not moved back."""
    w = W.copy()
    w[0, 2, 0] = 0.0  # pruned before: row 0 of replica 0 now drops inputs 0 and 2
    keep = KEEP.copy()
    keep[0, 2, 0] = False
    got = OBS(damp=DAMP).compensate(layer(w), [torch.tensor(keep)], batches(X), "cross_entropy", [0, 1])[0]
    np.testing.assert_allclose(got[0].numpy(), surgeon(w[0], keep[0], hessian(X.astype(np.float64))), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    assert got[0, 2, 0] == 0


def test_scores_are_w_squared_over_the_inverse_hessians_diagonal():
    got = OBS(damp=DAMP).scores(layer(W), batches(X), "cross_entropy", [0, 1])[0].numpy()
    diag = np.diag(np.linalg.inv(hessian(X.astype(np.float64))))
    np.testing.assert_allclose(got, W.astype(np.float64) ** 2 / diag[None, :, None], rtol=1e-5)


def test_obs_reconstructs_the_layers_outputs_better_than_magnitude_pruning():
    """Half of each replica's 12 weights removed, ranked per layer: ||XW - XŴ||² below magnitude pruning's, and
    below OBS's own masks without the update."""
    model, data, fraction = layer(W), batches(X), torch.full((2,), 0.5, dtype=torch.float64)
    full = [torch.ones(2, 4, 3, dtype=torch.bool)]
    obs = OBS(damp=DAMP)
    masks = prune_masks(obs.scores(model, data, "cross_entropy", [0, 1]), full, fraction, "layer")
    surgeon_w = obs.compensate(model, masks, data, "cross_entropy", [0, 1])[0].numpy()
    magnitude = prune_masks(Magnitude().scores(model, data, "cross_entropy", [0, 1]), full, fraction, "layer")[0]
    magnitude_w, masked_w = W * magnitude.numpy(), W * masks[0].numpy()
    for r in range(2):
        assert (surgeon_w[r] != 0).sum() == (magnitude_w[r] != 0).sum() == 6
        error = [np.sum((X @ W[r] - X @ pruned[r]) ** 2) for pruned in (surgeon_w, magnitude_w, masked_w)]
        assert error[0] < error[1] and error[0] < error[2], error  # below magnitude's, and OBS's masks alone


class AfterEachStep(pl.Callback):
    """Every layer's weights and biases at each epoch's end, and right after each epoch's pruning step (its start,
    after the pruning callback) with the masks; the training inputs."""

    def __init__(self):
        self.before, self.after, self.x = {}, {}, None

    def on_train_epoch_start(self, trainer, pl_module):
        self.x = trainer.datamodule.data["train"][0][0].double().numpy()
        layers = pl_module.model.layers
        self.after[trainer.current_epoch] = [(lay.replica_weight().detach().clone(), lay.replica_mask()) for lay in layers]

    def on_train_epoch_end(self, trainer, pl_module):
        layers = pl_module.model.layers
        self.before[trainer.current_epoch + 1] = [(lay.replica_weight().detach().clone(), lay.replica_bias().detach().clone())
                                                  for lay in layers]  # fmt: skip


def test_each_training_step_keeps_the_weights_obs_moved():
    """Pruning inside a real training (the population's step owning the masks): right after each step, every
    replica's kept weights, both layers, are the closed form on the weights before it (the hidden layer's inputs
    computed here from the first layer's weights before the step)."""
    seen = AfterEachStep()
    timing = Timing(first_epoch=1, every=1, threshold=None, final_epochs=1)  # steps at the start of epochs 1, 2, 3
    _, pruning, _ = tiny_fit([0.5, 0.1], timing, saliency=OBS(), extra_callbacks=[seen])
    x, moved = seen.x, 0
    for epoch in (1, 2, 3):
        (w0, b0), (w1, _) = seen.before[epoch]
        for r in range(2):
            hidden = np.maximum(x @ w0[r].double().numpy() + b0[r].double().numpy(), 0)
            for i, (inputs, w) in enumerate(((x, w0[r]), (hidden, w1[r]))):
                after, keep = seen.after[epoch][i][0][r].numpy(), seen.after[epoch][i][1][r].numpy()
                want = surgeon(w.numpy(), keep, hessian(inputs))
                np.testing.assert_allclose(after, want, rtol=1e-4, atol=1e-5, err_msg=f"epoch {epoch}, replica {r}")
                if (w.numpy()[~keep] != 0).any():  # the step pruned weights of this layer: the others moved
                    assert not np.allclose(after, w.numpy() * keep)
                    moved += 1
    assert moved >= 6 and [e["step"] for e in pruning.history] == [1, 1, 2, 2, 3, 3]


def test_a_family_whose_layers_are_not_plain_linear_maps_is_refused_before_training():
    class Opaque(MLP):
        linear_layers = False

    cfg = OmegaConf.create({"model": {"name": "opaque"}, "method": {"name": "obs"}, "ratio": 0.1})
    with pytest.raises(UserError, match="method=obs reads each layer's inputs .* model=opaque's layers .*model=mlp"):
        check_family(cfg, Opaque, OBS())
    check_family(cfg, MLP, OBS())  # the MLP's are
    with pytest.raises(UserError, match="method.saliency.damp must be above 0"):
        OBS(damp=0)


def test_a_tiny_obs_run_reaches_its_target_nonzero_weights(tmp_path):
    run = run_train("method=obs", "ratio=[0.1,0.02]", "dataset.train_size=600", "dataset.test_size=300",
                    "protocol.epochs=2", "pruning.timing.first_epoch=0", "pruning.timing.final_epochs=1",
                    "schedule.steps=1", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["ratio"], r["nonzero_weights"]) for r in records) == [(0.02, 1588), (0.1, 7940)]  # of 79,400
    steps = [json.loads(line) for line in (tmp_path / "run" / "pruning.jsonl").read_text().splitlines()]
    assert sorted(s["sparsity"] for s in steps) == pytest.approx([0.9, 0.98])
