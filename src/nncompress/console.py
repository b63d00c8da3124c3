"""What the package prints goes through `logging`, so a run's lines reach both the console and its run folder's
`train.log` (the handlers of conf/hydra/job_logging/nncompress.yaml): as plain lines, as `print` would write them,
warnings and errors on stderr, the rest on stdout."""
import logging
import sys
from contextlib import contextmanager

from .errors import UserError

FILE_ONLY = {"console": False}  # a record's `extra=` when the console shows it otherwise (a progress bar)


class Shown(logging.Filter):
    """A console handler's filter: records not marked FILE_ONLY, and (`below`) only those under that level."""

    def __init__(self, below: int = logging.CRITICAL + 1):
        super().__init__()
        self.below = below

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.below and getattr(record, "console", True)


def setup() -> None:
    """The console handlers alone, for a command run without Hydra (a no-op where logging is set up already)."""
    out, err = logging.StreamHandler(sys.stdout), logging.StreamHandler(sys.stderr)
    out.addFilter(Shown(below=logging.WARNING))
    err.addFilter(Shown())
    err.setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[out, err])


@contextmanager
def logged_errors():
    """A UserError leaving the block is written to the log files too, as the console shows it when the program
    exits (`error: ...`, by errors.exit_on_user_error): a failed run's train.log ends with why."""
    try:
        yield
    except UserError as err:
        logging.getLogger(__name__).error(f"error: {err}", extra=FILE_ONLY)
        raise
