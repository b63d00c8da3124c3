"""Compression methods: regularizers, pruning criteria (saliency.py), masks, schedules and timing, and the pruning
that drives them. Nothing here imports training/: what pruning needs from a training comes through host.PruningHost."""
