"""Turning scores into masks: remove the lowest-scored weights of each replica, globally or per layer."""
import torch


def lowest_removed(scores: torch.Tensor, n_remove: torch.Tensor) -> torch.Tensor:
    """Keep-mask (R, T) removing the n_remove[r] lowest scores of row r (ties: lower index first)."""
    order = scores.argsort(dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return rank >= n_remove.unsqueeze(1)


def global_keep(flat: list[torch.Tensor], fractions: torch.Tensor, units: list[torch.Tensor] | None = None):
    """All layers of a replica ranked together (the authors' choice): achieved counts are exact."""
    sizes = [f.shape[1] for f in flat]
    if units is None:
        n_remove = torch.round(fractions * sum(sizes)).long()
    else:
        n_remove = torch.round(fractions * sum(units)).long() + sum(size - u for size, u in zip(sizes, units))
    return lowest_removed(torch.cat(flat, 1), n_remove).split(sizes, dim=1)


def layer_keep(flat: list[torch.Tensor], fractions: torch.Tensor, units: list[torch.Tensor] | None = None):
    """The fraction removed from every layer separately: achieved counts within one weight per layer."""
    if units is None:
        return [lowest_removed(f, torch.round(fractions * f.shape[1]).long()) for f in flat]
    return [lowest_removed(f, torch.round(fractions * u).long() + f.shape[1] - u) for f, u in zip(flat, units)]


SCOPES = {"global": global_keep, "layer": layer_keep}  # pruning.scope: each scope's keep-masks (R, in * out) per layer


def prune_masks(scores: list[torch.Tensor], masks: list[torch.Tensor], fractions: torch.Tensor, scope: str = "global",
                units: list[torch.Tensor] | None = None):  # fmt: skip
    """New masks (R, in, out) per layer removing `fractions[r]` of replica r's weights, counted over all its
    weights (removed ones included: they rank first, so a removed weight never comes back), as `SCOPES[scope]` ranks
    them (`Pruning` checks the scope).

    `units`: per layer, how many entries of each replica's row are weights (R,), where rows are padded to the
    widest replica's (a HashedNet's buckets, `replica_units`): the padding, which `masks` leave out, ranks first
    and counts neither among the weights nor among the removed."""
    flat = [torch.where(m, s, -torch.inf).flatten(1) for s, m in zip(scores, masks)]
    return [k.view_as(m) for k, m in zip(SCOPES[scope](flat, fractions, units), masks)]
