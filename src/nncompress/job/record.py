"""Recording a fitted job: one record per replica that trained well, in the run's `results.jsonl`, the results
store, the experiment logger and (`export=true`) as artefacts; then what the run prints."""
import logging

import torch

from .. import results
from ..artefact.export import export
from ..config import Parts
from ..errors import UserError
from ..loggers import log_artefacts, log_replica_table
from .fit import Fitted
from .plan import Plan

log = logging.getLogger(__name__)


def record(parts: Parts, plan: Plan, fitted: Fitted, name: str) -> list[dict]:
    """Record every replica of `fitted` that trained well; a diverged one is left out and named in one line.
    `name`: the run's name, for the logger's artefact collection."""
    failed = fitted.module.failed()
    kept = [r for r in fitted.population.replicas if r.index not in failed]
    records = replica_records(plan, fitted, kept)
    run_dir, logger = plan.run_dir, fitted.trainer.logger
    exported = []  # in the store, beside the entries (ResultStore.artefact); a replica stored before and retrained
    # only to share a stream is export_stored's
    if parts.run.export:
        for rec, replica in zip(records, kept):
            if replica.cell not in plan.done:
                exported.append(plan.store.artefact(rec["key"]))
                rec["artefact_bytes"] = export(exported[-1], fitted.model, replica.index, rec,
                                               plan.standardization.get(replica.dataset))  # fmt: skip
    if parts.run.save_model:
        torch.save({"replicas": [r.__dict__ for r in fitted.population.replicas], "state_dict": fitted.model.state_dict()},
                   run_dir / "model.pt")  # fmt: skip
    results.write_jsonl(run_dir / "results.jsonl", records)
    log_replica_table(logger, records)
    log_artefacts(logger, exported, name)
    for rec in records:
        if (rec["dataset"], rec["seed"], rec["ratio"]) not in plan.done:  # retrained only to share a stream
            plan.store.put(rec)
    fitted.checkpoints.remove()  # the job is done, diverged replicas included: a rerun would end the same
    summarize(plan, fitted, kept, records)
    if failed:
        lost = ", ".join(f"{fitted.population.replicas[r].name} ({why})" for r, why in sorted(failed.items()))
        raise UserError(f"{len(failed)} of {fitted.population.size} replica(s) not stored: {lost}; lower protocol.lr?")
    return records


def replica_records(plan: Plan, fitted: Fitted, kept: list) -> list[dict]:
    module, epochs, learned = fitted.module, fitted.trainer.current_epoch, fitted.module.learned()
    counts = fitted.model.replica_counts()
    return [
        {
            "key": plan.key(replica),
            "seed": replica.seed,
            "ratio": replica.ratio,
            "dataset": replica.dataset,
            "source": plan.splits[replica.dataset].source,
            **counts[replica.index],
            **{f"{split}_acc": float(a[replica.index]) for split, a in module.accuracy.items()},
            "learned": bool(learned[replica.index]),  # training accuracy above chance + 1 point
            "chance_acc": float(module.chance[replica.index]),
            "epochs": epochs,
            **(fitted.pruning.replica_summary(replica.index, epochs) if fitted.pruning else {}),
            "population_size": fitted.population.size,
            "run_dir": str(plan.run_dir.resolve()),
            "wall_time_s": fitted.wall_s,
            "config": results.replica_config(plan.resolved, *replica.cell),
        }
        for replica in kept
    ]


def summarize(plan: Plan, fitted: Fitted, kept: list, records: list[dict]) -> None:
    """What the run prints when it ends: data, size and time, pruning's share, the replicas' table, warnings."""
    population, wall, pruning = fitted.population, fitted.wall_s, fitted.pruning
    sources = ", ".join(f"{d} ({plan.splits[d].source})" for d in population.datasets)
    log.info(f"\n{sources}, {population.size} replica(s), {wall:.1f} s -> {plan.run_dir}")
    if pruning:
        log.info(f"pruning's per-epoch work (training accuracy, saliencies, masks): {pruning.work_s:.1f} s "
                 f"({100 * pruning.work_s / wall:.0f} % of the run); replica-epochs computed: "
                 f"{fitted.module.stepper.replica_epochs:,} of {population.size * fitted.trainer.current_epoch:,} "
                 "(frozen left out)")
    if records:
        log.info(results.format_table(records))
    learned = fitted.module.learned()
    stuck = [r.name for r in kept if not learned[r.index]]
    if stuck:
        log.warning(f"warning: {len(stuck)} replica(s) learned nothing (training accuracy within 1 point of always "
                    f"answering the commonest class), stored with learned=false: {', '.join(stuck)}")
