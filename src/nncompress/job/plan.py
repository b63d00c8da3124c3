"""Planning a job: which replicas it trains. Each replica is named by its experiment key; those already stored are
skipped (resume), unusable store entries are left alone unless asked to repair them, and replicas another live run
holds are left to it (claims)."""
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .. import config, results
from ..config import Parts
from ..data.datasets import load_dataset
from ..population import Population

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a job knows before it trains: its resolved config, data, store and the key of each replica (cell)."""

    run_dir: Path
    resolved: dict
    splits: dict
    standardization: dict
    store: results.ResultStore
    keys: dict  # (dataset, seed, ratio) -> key
    done: set  # cells not to store: already stored, or left alone as unusable entries
    pending: list  # cells to train: those not done, and (common random numbers) the rest of their streams

    def key(self, replica) -> str:
        return self.keys[replica.cell]


def plan(cfg: DictConfig, parts: Parts, run_dir: Path) -> Plan:
    """Check the paths, load the data, open the store and name every replica the config asks for."""
    config.check_paths(cfg)
    store = results.ResultStore.create(parts.run.results_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    splits = {name: load_dataset(d, parts.run.data_dir, parts.run.cache_dir) for name, d in parts.datasets.items()}
    standardization = {name: s.standardize_() for name, s in splits.items()} if parts.protocol.normalize else {}
    store.migrate()
    keys = {
        (d, s, r): results.experiment_key(resolved, d, s, r, splits[d].source)
        for d in splits for s in config.seeds(cfg) for r in config.ratios(cfg)
    }
    done = {cell for cell, key in keys.items() if key in store} if parts.run.resume else set()
    bad = unusable_entries(store, keys, parts.run.repair)
    pending = Population.pending(list(keys), done | bad, parts.run.common_random_numbers)
    if not pending and bad:
        log.info(f"nothing trained: {len(done)} of {len(keys)} replica(s) are in the results store {store.root}, the "
                 f"other {len(bad)} left alone as unusable entries (repair=true trains them again)")
    elif not pending:
        log.info(f"nothing to do: all {len(keys)} replica(s) are in the results store {store.root}")
    elif done:
        log.info(f"resuming: {len(done)} of {len(keys)} replica(s) already in {store.root}")
    return Plan(run_dir, resolved, splits, standardization, store, keys, done | bad, pending)


def unusable_entries(store, keys: dict, repair: bool) -> set:
    """The cells whose store entry is there but unusable (see ResultStore): left alone and not trained, unless
    `repair` sets them aside to be trained again."""
    bad = {cell for cell, key in keys.items() if store.is_bad(key)}
    if bad and repair:
        for cell in bad:
            store.set_aside(keys[cell])
        return set()
    store.warn()
    if bad:
        log.warning(f"warning: {len(bad)} replica(s) not trained: their store entries are unusable (see above); rerun "
                    "with repair=true to set those entries aside in damaged/ and train the replicas again")
    return bad


@contextmanager
def claimed(plan: Plan, common_random_numbers: bool):
    """Yields the population of the pending replicas no other live run holds (None: all are held), claimed while the
    block runs. With common random numbers, a stream (replicas sharing a seed) trains whole or not at all."""
    keys, store, pending = plan.keys, plan.store, plan.pending
    with store.claims([keys[c] for c in pending]) as busy:
        if busy:  # another run trains these now
            stream = (lambda c: c[:2]) if common_random_numbers else (lambda c: c)  # noqa: E731
            held = {stream(c) for c in pending if keys[c] in busy}
            store.release([keys[c] for c in pending if stream(c) in held])
            pending = [c for c in pending if stream(c) not in held]
            log.info(f"skipping {len(held)} replica stream(s) another run is training now "
                     f"({', '.join(sorted(set(busy.values())))}); rerun later for them")
        yield Population.build(pending, common_random_numbers) if pending else None


def stored(plan: Plan) -> list[dict]:
    """The stored records of every replica of the plan (a job with nothing left to train returns these)."""
    return [r for r in map(plan.store.get, plan.keys.values()) if r is not None]
