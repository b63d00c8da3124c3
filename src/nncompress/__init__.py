"""Compare neural-network compression methods on MNIST and its variants (Baktash et al. 2019)."""
