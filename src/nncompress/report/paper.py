"""What the paper holds: its tables' values, its datasets in their column order, the pruning methods it tested."""
import pandas as pd

from ..data.catalog import IMAGES
from ..resources import PAPER_TABLES

REFERENCE = PAPER_TABLES  # one row per cell of Tables 1-6: mean and std over the paper's runs
DATASETS = ["mnist", "mnist_back_image", "mnist_back_rand", "mnist_rot"]  # the paper's column order
PRUNING = ("magl1", "magl2", "obd")
PAPER_RUNS = 5  # the paper's means and standard deviations are over 5 runs per cell


def in_order(datasets) -> list[str]:
    """`datasets` in the paper's column order, then those it did not use, sorted (no dataset is left out)."""
    present = {d for d in datasets if isinstance(d, str)}  # a table row without runs has none
    return [d for d in DATASETS if d in present] + sorted(present - set(DATASETS))


def other_methods(runs: pd.DataFrame) -> list[str]:
    """The pruning methods with runs that the paper did not test (criteria added since), sorted."""
    return sorted(set(runs.loc[runs["role"] == "pruned", "method"]) - set(PRUNING) - {"none"})  # none: dense


def mlp_parameters(hidden, ratio):
    """The parameters of the paper's 784-`hidden`-10 MLP keeping `ratio` of its weights: weights kept + biases,
    where its table cells stand on a figure's axis of parameters (the x of our replicas at that ratio)."""
    weights = IMAGES.features * hidden + hidden * IMAGES.classes
    return ratio * weights + hidden + IMAGES.classes
