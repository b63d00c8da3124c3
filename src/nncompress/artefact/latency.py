"""CPU inference latency: the median of repeated calls, robust to the odd slow call on a shared machine."""
import statistics
import time

import torch


@torch.inference_mode()  # as inference runs: no autograd bookkeeping in the times
def median_ms(model, x: torch.Tensor, repeats: int = 50, warmup: int = 5) -> float:
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def batch_of(x: torch.Tensor, size: int) -> torch.Tensor:
    """The first `size` rows of `x`, cycled when it has fewer."""
    return x.repeat((size + len(x) - 1) // len(x), 1)[:size].contiguous()
