"""Errors meant for the user: printed as one line, never as a traceback."""
import hashlib
import os
import signal
import sys
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


STOPPED = ("stopped by SIGTERM: replicas that finished are in the results store, and rerunning the same command "
           "trains the rest")


class Terminated(SystemExit):
    """SIGTERM (what schedulers send), raised wherever the program is when it arrives: a SystemExit, so no `except
    Exception` swallows it, and, uncaught, the program ends with its one line (status 1)."""


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated. Lightning's own handler, installed while it trains, calls this one
    after its own (which only flags the signal for its loops to raise at the next batch)."""

    def stop(signum, frame):
        raise Terminated(f"error: {STOPPED}")

    signal.signal(signal.SIGTERM, stop)


def exit_on_sigterm() -> None:
    """From now on SIGTERM ends the program at once, in one line (status 1): for its shutdown (joining threads,
    atexit callbacks), where an exception would be printed as a traceback and ignored."""

    def stop(signum, frame):
        sys.stdout.flush()
        print(f"error: {STOPPED}", file=sys.stderr, flush=True)
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)
