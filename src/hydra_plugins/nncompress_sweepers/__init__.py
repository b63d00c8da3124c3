"""Hydra plugins of nncompress (Hydra only loads plugin classes from the `hydra_plugins` namespace)."""
