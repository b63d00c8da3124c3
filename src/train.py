"""Train a population of networks (every seed x ratio of the config) and record one result per replica.

    python src/train.py                                  # defaults: conf/train.yaml
    python src/train.py protocol=paper seeds=[0,1,2] model.hidden=30
    python src/train.py -m dataset=mnist,mnist_rot       # a Hydra multirun sweep, under multirun/
"""
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from nncompress import config, results
from nncompress.artefact.export import export
from nncompress.data.datasets import load_dataset
from nncompress.data.module import PopulationData
from nncompress.errors import UserError, exit_on_user_error
from nncompress.loggers import experiment_logger, log_artefacts, log_replica_table, run_name
from nncompress.population import Population
from nncompress.training.histograms import WeightHistograms
from nncompress.training.module import PopulationClassifier
from nncompress.training.progress import progress_callback, quiet_lightning
from nncompress.training.pruning import PruningCallback


def train(cfg: DictConfig) -> list[dict]:
    parts = config.build(cfg)
    config.check_paths(cfg)
    store = results.ResultStore.create(cfg.results_dir)
    quiet_lightning()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    splits = {name: load_dataset(d, cfg.data_dir, cfg.cache_dir) for name, d in parts.datasets.items()}
    standardization = {name: s.standardize_() for name, s in splits.items()} if parts.protocol.normalize else {}
    store.migrate()
    keys = {
        (d, s, r): results.experiment_key(resolved, d, s, r, splits[d].source)
        for d in splits for s in config.seeds(cfg) for r in config.ratios(cfg)
    }
    done = {cell for cell, key in keys.items() if key in store} if cfg.resume else set()
    done |= unusable_entries(store, keys, cfg.repair)
    pending = Population.pending(list(keys), done, cfg.common_random_numbers)
    if not pending:
        print(f"nothing to do: all {len(keys)} replica(s) are in the results store {store.root}")
        return [r for r in map(store.get, keys.values()) if r is not None]
    if done:
        print(f"resuming: {len(done)} of {len(keys)} replica(s) already in {store.root}")
    with store.claims([keys[c] for c in pending]) as busy:
        if busy:  # another run trains these now (with common random numbers, a stream trains whole or not at all)
            stream = (lambda c: c[:2]) if cfg.common_random_numbers else (lambda c: c)  # noqa: E731
            held = {stream(c) for c in pending if keys[c] in busy}
            store.release([keys[c] for c in pending if stream(c) in held])
            pending = [c for c in pending if stream(c) not in held]
            print(f"skipping {len(held)} replica stream(s) another run is training now "
                  f"({', '.join(sorted(set(busy.values())))}); rerun later for them")
        if not pending:
            return []
        return train_population(cfg, parts, run_dir, resolved, splits, standardization, store, keys, done,
                                Population.build(pending, cfg.common_random_numbers))  # fmt: skip


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
        print(f"warning: {len(bad)} replica(s) not trained: their store entries are unusable (see above); rerun with "
              "repair=true to set those entries aside in damaged/ and train the replicas again", file=sys.stderr)
    return bad


def train_population(cfg, parts, run_dir, resolved, splits, standardization, store, keys, done, population) -> list[dict]:
    """Train `population`, test it, and record each replica that trained well (results.jsonl, store, logger)."""
    names, protocol = population.datasets, parts.protocol
    data = PopulationData([splits[d] for d in names], protocol.batch_size, population.seeds("data"), cfg.eval_batch_size,
                          cfg.precision, [names.index(d) for d in population.stream_datasets])  # fmt: skip

    model = parts.model.build(population, data.features, protocol)
    callbacks = [progress_callback()]
    pruning = parts.pruning and parts.pruning(saliency=parts.saliency, population=population, run_dir=run_dir)
    if pruning:
        callbacks.append(PruningCallback(pruning))
    if cfg.histogram_epochs and hasattr(model, "layers"):
        callbacks.append(WeightHistograms(cfg.histogram_epochs, run_dir, [r.name for r in population.replicas]))
    epochs = pruning.max_epochs if pruning else protocol.epochs
    # The authors' update w <- w - lambda * eta * R'(w) / n, n the training-set size.
    regularizer = None
    if parts.regularizer and protocol.reg_lambda:
        regularizer = parts.regularizer(strength=protocol.reg_lambda / data.n_train)
    module = PopulationClassifier(model, population, protocol, epochs, regularizer, cfg.cuda_graph, cfg.compact)
    with experiment_logger(cfg, parts.logger, run_dir, resolved) as logger:
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator=cfg.accelerator,
            devices=1,
            precision=cfg.precision,
            logger=logger,
            callbacks=callbacks,
            deterministic=cfg.deterministic,
            default_root_dir=run_dir,
            enable_checkpointing=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=1.0 if data.has("val") else 0,
            log_every_n_steps=1,  # one step per epoch
        )
        start = time.time()
        trainer.fit(module, datamodule=data)
        trainer.test(module, datamodule=data, verbose=False)
        wall = time.time() - start

        failed, learned = module.failed(), module.learned()
        kept, records = [], []
        for replica, counts in zip(population.replicas, model.replica_counts()):
            if replica.index in failed:
                continue
            kept.append(replica)
            acc = {f"{split}_acc": float(a[replica.index]) for split, a in module.accuracy.items()}
            records.append(
                {
                    "key": keys[replica.cell],
                    "seed": replica.seed,
                    "ratio": replica.ratio,
                    "dataset": replica.dataset,
                    "source": splits[replica.dataset].source,
                    **counts,
                    **acc,
                    "learned": bool(learned[replica.index]),  # training accuracy above chance + 1 point
                    "chance_acc": float(module.chance[replica.index]),
                    "epochs": trainer.current_epoch,
                    **(pruning.replica_summary(replica.index, trainer.current_epoch) if pruning else {}),
                    "population_size": population.size,
                    "run_dir": str(run_dir.resolve()),
                    "wall_time_s": wall,
                    "config": results.replica_config(resolved, *replica.cell),
                }
            )
        if cfg.export:
            for record, replica in zip(records, kept):
                path = run_dir / "artefacts" / f"{record['key']}.safetensors"
                record["artefact_bytes"] = export(path, model, replica.index, record, standardization.get(replica.dataset))
        if cfg.save_model:
            torch.save({"replicas": [r.__dict__ for r in population.replicas], "state_dict": model.state_dict()}, run_dir / "model.pt")
        results.write_jsonl(run_dir / "results.jsonl", records)
        log_replica_table(trainer.logger, records)
        if cfg.export:
            log_artefacts(trainer.logger, sorted((run_dir / "artefacts").glob("*.safetensors")),
                          "replicas-" + run_name(cfg).replace("/", "-"))  # fmt: skip
        for record in records:
            if (record["dataset"], record["seed"], record["ratio"]) not in done:  # retrained only to share a stream
                store.put(record)
        sources = ", ".join(f"{d} ({splits[d].source})" for d in names)
        print(f"\n{sources}, {population.size} replica(s), {wall:.1f} s -> {run_dir}")
        if pruning:
            print(f"pruning's per-epoch work (training accuracy, saliencies, masks): {pruning.work_s:.1f} s "
                  f"({100 * pruning.work_s / wall:.0f} % of the run); replica-epochs computed: "
                  f"{module.stepper.replica_epochs:,} of {population.size * trainer.current_epoch:,} (frozen left out)")
        if records:
            print(results.format_table(records))
        stuck = [r.name for r in kept if not learned[r.index]]
        if stuck:
            print(f"warning: {len(stuck)} replica(s) learned nothing (training accuracy within 1 point of always answering "
                  f"the commonest class), stored with learned=false: {', '.join(stuck)}", file=sys.stderr)
        if failed:
            lost = ", ".join(f"{population.replicas[r].name} ({why})" for r, why in sorted(failed.items()))
            raise UserError(f"{len(failed)} of {population.size} replica(s) not stored: {lost}; lower protocol.lr?")
        return records


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> tuple[float, float]:
    """Returns (mean validation accuracy, or test accuracy without a validation set; mean parameters): the
    objectives a Hydra sweeper such as Optuna's optimizes."""
    with exit_on_user_error():
        try:
            records = train(cfg)
        except SIGTERMException:  # Lightning's own exits with status 0, as if the job had finished
            raise UserError(f"stopped by SIGTERM: this job's replicas were not stored; those finished before are in "
                            f"{cfg.results_dir}, and rerunning the same command trains the rest") from None
    if not records:  # all being trained by another run
        return float("nan"), float("nan")
    accuracy = "val_acc" if "val_acc" in records[0] else "test_acc"
    return sum(r[accuracy] for r in records) / len(records), sum(r["parameters"] for r in records) / len(records)


if __name__ == "__main__":
    with exit_on_user_error():
        config.check_choices(sys.argv[1:])
    main()
