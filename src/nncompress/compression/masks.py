"""Turning scores into masks: remove the lowest-scored weights of each replica, globally or per layer."""
import torch


def lowest_removed(scores: torch.Tensor, n_remove: torch.Tensor) -> torch.Tensor:
    """Keep-mask (R, T) removing the n_remove[r] lowest scores of row r (ties: lower index first)."""
    order = scores.argsort(dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return rank >= n_remove.unsqueeze(1)


def global_keep(flat: list[torch.Tensor], fractions: torch.Tensor) -> list[torch.Tensor]:
    """All layers of a replica ranked together (the authors' choice): achieved counts are exact."""
    sizes = [f.shape[1] for f in flat]
    return lowest_removed(torch.cat(flat, 1), torch.round(fractions * sum(sizes)).long()).split(sizes, dim=1)


def layer_keep(flat: list[torch.Tensor], fractions: torch.Tensor) -> list[torch.Tensor]:
    """The fraction removed from every layer separately: achieved counts within one weight per layer."""
    return [lowest_removed(f, torch.round(fractions * f.shape[1]).long()) for f in flat]


SCOPES = {"global": global_keep, "layer": layer_keep}  # pruning.scope: each scope's keep-masks (R, in * out) per layer


def prune_masks(scores: list[torch.Tensor], masks: list[torch.Tensor], fractions: torch.Tensor, scope: str = "global"):
    """New masks (R, in, out) per layer removing `fractions[r]` of replica r's weights, counted over all its
    weights (removed ones included: they rank first, so a removed weight never comes back), as `SCOPES[scope]` ranks
    them (`Pruning` checks the scope)."""
    flat = [torch.where(m, s, -torch.inf).flatten(1) for s, m in zip(scores, masks)]
    return [k.view_as(m) for k, m in zip(SCOPES[scope](flat, fractions), masks)]
