"""Compare neural-network compression methods on MNIST and its variants (Baktash et al. 2019)."""


def load_results(*paths):
    """Every replica stored under `paths` (results stores or run folders) as one pandas DataFrame: see
    `nncompress.replicas.load_results`."""
    from .replicas import load_results  # pandas only when asked for: training never needs it

    return load_results(*paths)
