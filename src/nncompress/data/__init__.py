"""Datasets: MNIST, the Larochelle et al. 2007 variants, splits and in-memory batching."""
