"""Errors meant for the user: printed as one line, never as a traceback."""
import hashlib
from pathlib import Path


class UserError(Exception):
    """Bad input (config value, data file) explained in one line."""


def check_digest(path: Path, algorithm: str, expected: str) -> None:
    """Raise a one-line UserError unless `path` hashes to `expected` with `algorithm`."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise UserError(
            f"checksum mismatch for {path}: {algorithm} is {digest.hexdigest()}, expected {expected} "
            "(corrupt or not the published file)"
        )


class exit_on_user_error:
    """Context manager: a UserError inside ends the program with `error: <message>` and exit code 1."""

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if kind is not None and issubclass(kind, UserError):
            raise SystemExit(f"error: {err}")
        return False
