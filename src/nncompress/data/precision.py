"""The Lightning precisions the project runs, each with the dtype its training batches are stored in: under bf16
autocast the matmuls read bfloat16 anyway, so storing it halves the bytes every step's batch gather moves. Names only,
no torch: the pre-check of a command line reads them."""
PRECISIONS = {"32-true": "float32", "bf16-mixed": "bfloat16"}
