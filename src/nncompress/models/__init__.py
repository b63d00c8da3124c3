"""Batched populations of models: weights carry a leading replica dimension."""
