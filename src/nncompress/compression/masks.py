"""Turning scores into masks: remove the lowest-scored weights of each replica, globally or per layer."""
import torch


def lowest_removed(scores: torch.Tensor, n_remove: torch.Tensor) -> torch.Tensor:
    """Keep-mask (R, T) removing the n_remove[r] lowest scores of row r (ties: lower index first)."""
    order = scores.argsort(dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return rank >= n_remove.unsqueeze(1)


def prune_masks(scores: list[torch.Tensor], masks: list[torch.Tensor], fractions: torch.Tensor, scope: str = "global"):
    """New masks (R, in, out) per layer removing `fractions[r]` of replica r's weights, counted over all its
    weights (removed ones included: they rank first, so a removed weight never comes back).

    `global` ranks all layers of a replica together (the authors' choice); `layer` removes the fraction from
    every layer separately. Achieved counts are exact (global) or within one weight per layer (layer).
    """
    flat = [torch.where(m, s, -torch.inf).flatten(1) for s, m in zip(scores, masks)]
    sizes = [f.shape[1] for f in flat]
    if scope == "global":
        keep = lowest_removed(torch.cat(flat, 1), torch.round(fractions * sum(sizes)).long()).split(sizes, dim=1)
    elif scope == "layer":
        keep = [lowest_removed(f, torch.round(fractions * f.shape[1]).long()) for f in flat]
    else:
        raise ValueError(f"unknown pruning scope '{scope}' (choose from: global, layer)")
    return [k.view_as(m) for k, m in zip(keep, masks)]
