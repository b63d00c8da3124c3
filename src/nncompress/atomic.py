"""All of a file or none of it: the one writer behind the results store, the data caches and the artefacts."""
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path


def create_beside(path: Path, suffix: str) -> Path:
    """A new empty file beside `path`, under a name no other writer has, made as `open` makes files: with the process's
    umask applied (0644 under umask 022; `tempfile.mkstemp` would make it 0600, unreadable to a lab's colleagues)."""
    while True:
        tmp = path.parent / f".{path.name}-{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yields a temporary path beside `path` to write; when the block ends it is fsynced and renamed onto `path`, so
    a crash never leaves a partial file nor a power cut an empty one, and parallel writers never mix. On an error
    the temporary file is removed and `path` is left as it was. The file gets the mode the umask gives, even from a
    writer that replaces the temporary file with one of its own (safetensors makes it 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_beside(path, suffix)
    mode = stat.S_IMODE(tmp.stat().st_mode)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
