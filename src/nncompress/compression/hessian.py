"""Diagonal of the Hessian of the training loss by second-order backpropagation (LeCun et al. 1989).

Hand-written because autograd gives Hessian-vector products, not the diagonal: the exact diagonal by autograd
costs one backward pass per weight. This recursion costs about one forward and one backward pass over the
data, batched over replicas, and is exact for one hidden layer (the paper's networks): a hidden pre-activation
z_j reaches the loss only through the linear map to the outputs, so per sample
    d2L/dz_j2 = f'(z_j)^2 * w_j^T H_out w_j + f''(z_j) * dL/da_j,     d2L/dW_ij2 = a_i^2 * d2L/dz_j2,
with w_j the weights leaving unit j and H_out the Hessian of the loss in the output pre-activations
(diagonal for sigmoid + squared error, diag(p) - p p^T for softmax + cross-entropy).

On a deeper MLP it is exact for the last two weight layers (the last hidden layer's, through the formula above,
and the output layer's) and LeCun's diagonal approximation further down: d2L/dz_j2 of a lower layer is passed down
as f'(z_j)^2 * sum_k w_jk^2 d2L/dz_k2 + f''(z_j) * dL/da_j, the Hessian in the pre-activations z_k above taken as
diagonal (cross terms between units dropped). So `exact` (and `abs`, its absolute value) is the exact diagonal on
the top two layers and this approximation below; `gauss_newton` is the diagonal of the Gauss-Newton matrix J^T H J
(J the Jacobian of the sigmoid outputs under the squared error, of the logits under cross-entropy) exactly on the
top two layers and approximated alike below. tests/test_deep.py measures the difference from the exact diagonal on a
4-3-3-2 net (docs/methods-and-models.md).
"""
import torch

from ..models.functions import ACTIVATIONS, LOSSES
from ..models.layers import replica_targets


def sum_outer(a2: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """sum_b a2[., b, i] * s[r, b, j] -> (R, in, out) for s (R, B, out) and a2 (B, in) shared by all replicas,
    (G, B, in) per stream (the R / G replicas of a stream side by side) or (R, B, in) per replica."""
    R, B, out = s.shape
    if a2.dim() == 2:  # one wide GEMM for all replicas
        return (a2.T @ s.transpose(0, 1).reshape(B, R * out)).view(-1, R, out).transpose(0, 1)
    G = a2.shape[0]
    if G == R:
        return torch.bmm(a2.transpose(1, 2), s)
    wide = s.view(G, R // G, B, out).permute(0, 2, 1, 3).reshape(G, B, -1)
    return torch.bmm(a2.transpose(1, 2), wide).view(G, -1, R // G, out).transpose(1, 2).reshape(R, -1, out)


@torch.no_grad()
def hessian_diagonal(model, batches, loss: str, gauss_newton: bool = False) -> list[torch.Tensor]:
    """Per layer, d2L/dW2 (R, in, out) of the training loss averaged over the samples of `batches`
    (data.module.EvalBatches), for every replica.

    `gauss_newton` drops the terms in second derivatives of the activations (the result is then >= 0).
    """
    layers, last = model.layers, len(model.layers) - 1
    device = layers[0].bias.device
    sums = [torch.zeros(lay.replicas, lay.in_features, lay.out_features, device=device) for lay in layers]
    for xb, yb in batches:
        inputs, pre = [xb], []
        for i, layer in enumerate(layers):
            pre.append(layer(inputs[-1]))
            if i < last:
                inputs.append(model.activation(pre[-1]))
        grad, s, quad = LOSSES[loss].output_terms(pre[-1], replica_targets(yb, model.replicas), gauss_newton)
        for i in reversed(range(len(layers))):
            sums[i] += sum_outer(inputs[i] * inputs[i], s)
            if i == 0:
                break
            w = layers[i].replica_weight()
            d1, d2 = ACTIVATIONS[model.activation_name].derivatives(pre[i - 1], inputs[i])
            grad_a = grad @ w.transpose(1, 2)
            second_a = quad(w) if i == last else s @ (w * w).transpose(1, 2)
            s = d1 * d1 * second_a if gauss_newton else d1 * d1 * second_a + d2 * grad_a
            grad = grad_a * d1
    return [h / batches.samples for h in sums]
