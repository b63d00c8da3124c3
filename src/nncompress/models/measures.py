"""FLOPs and compression: what every record derives alike from the counts its family gives (no torch, so that
`load_results` fills them for records stored before they were measured, through the family's spec).

FLOPs are multiply-adds of one example's forward pass (biases, activations and pooling not counted); `dense_`: the
same network unpruned, for a HashedNet its virtual network.
"""
MEASURES = ("flops", "dense_flops", "dense_parameters", "speedup", "compression")


def measured(flops, dense_flops, parameters, dense_parameters) -> dict:
    """A record's measures: speedup = dense_flops / flops, compression = dense_parameters / parameters (None where
    the divisor is 0: a replica with no multiply left has no finite speedup). NaN in, NaN out: a stored record that
    cannot tell a count."""
    return {"flops": flops, "dense_flops": dense_flops, "dense_parameters": dense_parameters,
            "speedup": dense_flops / flops if flops else None,
            "compression": dense_parameters / parameters if parameters else None}  # fmt: skip
