"""A job, as `src/train.py` runs it: plan (keys, resume, claims) -> fit (data, model, trainer) -> record."""
