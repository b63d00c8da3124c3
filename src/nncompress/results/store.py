"""The resumable results store: one JSON file per finished replica, named by its experiment key (OpenLTH's idea):
rerunning a sweep skips what is there, a killed run loses only its unfinished replicas, and a replica can never be
recorded twice or half. Also a run's own `results.jsonl`, and reading one from elsewhere.
"""
import json
import logging
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..atomic import write_text
from ..errors import UserError
from .keys import config_key
from .migration import upgrade_record
from .schema import is_key, problem

log = logging.getLogger(__name__)


def dumps(record: dict) -> str:
    """Standard JSON (NaN and infinities refused, never written)."""
    return json.dumps(record, sort_keys=True, allow_nan=False)


def write_jsonl(path: Path, records: list[dict]) -> None:
    write_text(path, "".join(dumps(r) + "\n" for r in records))


MARKER = ".nncompress-store"  # an empty file: this folder is a results store
# Besides the entries; artefacts/: an entry's replica as a standalone file; checkpoints/: unfinished jobs'
# (training/checkpoint.py); README.md: a store's own notes.
OWN = {MARKER, "artefacts", "checkpoints", "claims", "damaged", "migrated", "README.md"}


class ResultStore:
    """A folder of `<key>.json` files, one per finished replica, marked by `.nncompress-store`.

    It touches only its own files: entries named by a key, `artefacts/<key>.safetensors` (an entry's replica as a
    standalone file: kept with the entry it belongs to), and `checkpoints/`, `claims/`, `damaged/`, `migrated/`;
    anything else is left alone and named once in a warning. An entry that does not parse, holds another key or lacks
    a field is left where it is and counts as neither done nor missing (`bad`); only `set_aside` (a run's
    `repair=true`) moves it to `damaged/`. Readers `open` a store, writers `create` it; reading never writes.
    """

    def __init__(self, root):
        self.root = Path(root).expanduser()
        self.bad: dict[str, str] = {}  # entry file name -> why it is not used
        self.warned: set[str] = set()

    @classmethod
    def open(cls, root) -> "ResultStore":
        """An existing store with entries, for reading: anything else is a one-line UserError."""
        store = cls(root)
        where = f"results store '{root}'"
        if not str(root).strip():
            raise UserError("the results store's path is empty")
        if not store.root.exists():
            raise UserError(f"no {where}: no such folder")
        if not store.root.is_dir():
            raise UserError(f"{where} is a file, not a folder")
        if not store.is_store():
            raise UserError(f"'{root}' is not a results store (no {MARKER} marker, no <key>.json entries)")
        if not any(True for _ in store.entries()):
            raise UserError(f"{where} holds no stored replica yet")
        return store

    @classmethod
    def create(cls, root) -> "ResultStore":
        """The store at `root` for writing: made if missing (or empty), refused when it is a file, holds files that
        are not a store's, or cannot be written."""
        store = cls(root)
        if not str(root).strip():
            raise UserError("results_dir is empty: name a folder for the results store")
        if store.root.exists() and not store.root.is_dir():
            raise UserError(f"results_dir '{root}' is a file, not a folder")
        if store.root.is_dir() and not store.is_store() and store.foreign():
            raise UserError(f"results_dir '{root}' is not a results store and holds other files "
                            f"({', '.join(store.foreign()[:3])}{', ...' if len(store.foreign()) > 3 else ''}): "
                            "point it at a new or empty folder")  # fmt: skip
        try:
            store.root.mkdir(parents=True, exist_ok=True)
            (store.root / MARKER).touch()
            tempfile.TemporaryFile(dir=store.root).close()
        except OSError as err:
            raise UserError(f"results_dir '{store.root}' is not writable ({err.strerror})") from None
        return store

    def is_store(self) -> bool:
        """Marked, or (a store from before the marker) holding entries."""
        return (self.root / MARKER).exists() or any(True for _ in self.entries())

    def entries(self):
        return (p for p in self.root.glob("*.json") if is_key(p.stem))

    def foreign(self) -> list[str]:
        """The names in the store's folder that are not its own (never read, moved or deleted)."""
        return sorted(p.name for p in self.root.iterdir()
                      if p.name not in OWN and not (p.suffix == ".json" and is_key(p.stem)))  # fmt: skip

    def path(self, key: str) -> Path:
        if not is_key(key):
            raise ValueError(f"not a results-store key: {key!r}")
        return self.root / f"{key}.json"

    def artefact(self, key: str) -> Path:
        """Where the artefact of `key`'s replica lives (`export=true`): beside its entry, so that whatever keeps the
        store (`make clean`) keeps it too."""
        return self.root / "artefacts" / self.path(key).with_suffix(".safetensors").name

    def read(self, path: Path) -> dict | None:
        """The record in `path`; None when there is none, or when it is bad (noted in `bad`). An entry that cannot
        be read for another reason (permission, I/O) is an error: its replica is not missing."""
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except OSError as err:
            raise UserError(f"cannot read results-store entry {path}: {err.strerror}") from None
        except ValueError:  # not JSON, not UTF-8
            self.bad[path.name] = "not JSON (truncated or edited)"
            return None
        why = problem(record) or (None if record["key"] == path.stem else f"holds the entry {record['key']}")
        if why:
            self.bad[path.name] = why
            return None
        return record

    def warn(self) -> None:
        """One warning for the bad entries and one for the foreign files, of those not yet warned about."""
        self.warn_foreign()
        bad = {n: why for n, why in self.bad.items() if n not in self.warned}
        if bad:
            log.warning(f"warning: {len(bad)} results-store entr{'y' if len(bad) == 1 else 'ies'} in {self.root} left "
                        f"out ({describe(bad)})")  # fmt: skip
            self.warned |= set(bad)

    def warn_foreign(self) -> None:
        foreign = [n for n in self.foreign() if not n.startswith(".") and n not in self.warned] if self.root.is_dir() else []
        if foreign:
            log.warning(f"warning: {self.root} holds {len(foreign)} file(s) that are not results-store entries, left "
                        f"alone: {', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}")  # fmt: skip
            self.warned |= set(foreign)

    def set_aside(self, key: str) -> None:
        """Move a bad entry to `damaged/` (never deleted), so that its replica is trained again."""
        damaged = self.root / "damaged" / self.path(key).name
        damaged.parent.mkdir(exist_ok=True)
        os.replace(self.path(key), damaged)
        self.bad.pop(damaged.name, None)
        log.warning(f"repair: results-store entry moved to {damaged}; its replica is trained again")

    @contextmanager
    def claims(self, keys: list[str]):
        """Claim `keys` for this process while the block runs (`claims/<key>.claim` holding pid and host, created
        exclusively); yields those another live run holds, key -> who. A claim whose owner is gone (this host, no
        such process) or older than CLAIM_HOURS is taken over; this process's claims are released on the way out."""
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        mine, busy = [], {}  # keys
        for key in keys:
            path = self.claim_path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
                except FileExistsError:
                    holder = claim_holder(path, me)
                    if holder is None:  # stale
                        path.unlink(missing_ok=True)
                        continue
                    busy[key] = holder
                    break
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
                mine.append(key)
                break
        try:
            yield busy
        finally:
            self.release(mine)

    def checkpoint_path(self, keys: list[str]) -> Path:
        """Where a job training the replicas `keys` keeps its mid-run checkpoint: named by a hash of them, so a rerun
        of the same command finds it and a job training anything else never does."""
        return self.root / "checkpoints" / f"{config_key(sorted(keys))}.ckpt"

    def claim_path(self, key: str) -> Path:
        return self.root / "claims" / f"{self.path(key).stem}.claim"

    def release(self, keys) -> None:
        """Drop this process's claims on `keys` (never another's that took one over)."""
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for key in keys:
            path = self.claim_path(key)
            try:
                if json.loads(path.read_text()) == me:
                    path.unlink()
            except (FileNotFoundError, ValueError):
                pass

    def migrate(self) -> int:
        """Re-key entries stored under key version 1 (their configs upgraded; those `upgrade_record` cannot carry
        over are left to be trained again); the old files are moved to `migrated/`, never deleted. Returns how many
        entries were moved. A writer's step: readers upgrade in memory."""
        moved = 0
        for path in sorted(self.entries()):
            record = self.read(path)
            if record is None or "pruning_scope" not in record["config"]:
                continue
            try:
                new = upgrade_record(record)
            except ValueError as err:
                self.bad[path.name] = str(err)
                continue
            if new is not None and new["key"] not in self:
                self.put(new)
            (self.root / "migrated").mkdir(exist_ok=True)
            os.replace(path, self.root / "migrated" / path.name)
            moved += 1
        if moved:
            log.info(f"results store {self.root}: {moved} entr{'y' if moved == 1 else 'ies'} of an earlier key scheme "
                     f"re-keyed (originals in migrated/; ConvNets with dropout are trained again)")
        return moved

    def __contains__(self, key: str) -> bool:
        return self.read(self.path(key)) is not None

    def is_bad(self, key: str) -> bool:
        """Whether `key`'s entry is there but unusable (after a read of it)."""
        return self.path(key).name in self.bad

    def get(self, key: str) -> dict | None:
        return self.read(self.path(key))

    def put(self, record: dict) -> None:
        write_text(self.path(record["key"]), dumps(record))

    def records(self) -> list[dict]:
        """Every usable entry's record (the bad ones are noted in `bad`)."""
        return [r for r in map(self.read, sorted(self.entries())) if r is not None]


def describe(left_out: dict[str, str], most: int = 3) -> str:
    """`name: why; ...` for a few of them."""
    shown = "; ".join(f"{name}: {why}" for name, why in list(left_out.items())[:most])
    return shown + (f"; and {len(left_out) - most} more" if len(left_out) > most else "")


CLAIM_HOURS = 48  # a claim from another host older than this is taken to be a crashed run's


def claim_holder(path: Path, me: dict) -> str | None:
    """Who holds the claim in `path` ("pid P on HOST"), or None when it is stale."""
    try:
        owner = json.loads(path.read_text())
        age_h = (time.time() - path.stat().st_mtime) / 3600
    except FileNotFoundError:
        return None
    except ValueError:  # being written this instant
        return "a run starting now"
    if owner["host"] == me["host"]:
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
    elif age_h > CLAIM_HOURS:
        return None
    return f"pid {owner['pid']} on {owner['host']}"


def read_jsonl(path: Path) -> list[dict]:
    """A run's own `results.jsonl` (strict: see `jsonl_records` for one from elsewhere)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def jsonl_records(path: Path, left_out: dict) -> dict[str, dict]:
    """`file:line` -> record, of the usable lines of a `results.jsonl` from elsewhere; the others go to `left_out`."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    except ValueError:
        left_out[str(path)] = "not UTF-8 text"
        return {}
    found = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError:
            left_out[where] = "not JSON"
            continue
        why = problem(record)
        if why:
            left_out[where] = why
        else:
            found[where] = record
    return found


