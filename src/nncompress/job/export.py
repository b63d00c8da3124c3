"""Artefacts for the replicas a job finds stored (`export=true` on a sweep that resumes): each gets its artefact in
the store, beside its entry, exported from its run's saved model; those without one are named in one line."""
import logging
from pathlib import Path

from ..artefact.export import export_saved
from ..errors import UserError
from .plan import Plan

log = logging.getLogger(__name__)


def export_stored(plan: Plan) -> None:
    """Every stored replica of the job without an artefact in the store is exported from its run's saved model
    (`save_model=true`), and its entry gains `artefact_bytes`; those whose run saved none are named, to retrain."""
    store = plan.store
    lacking = [r for r in map(store.get, (plan.keys[c] for c in sorted(plan.done))) if r is not None
               and not store.artefact(r["key"]).is_file()]  # fmt: skip
    runs, sizes = {}, {}
    for record in lacking:
        runs.setdefault(record.get("run_dir", ""), []).append(record)
    for run_dir, records in runs.items():
        if not (Path(run_dir) / "model.pt").is_file():
            continue
        try:
            sizes |= export_saved(Path(run_dir), records, {r["key"]: store.artefact(r["key"]) for r in records},
                                  standardization=plan.standardization)  # fmt: skip
        except UserError as err:  # a saved model that is not this run's: its replicas are named below
            log.warning(f"warning: export: {err}")
    for record in lacking:
        if record["key"] in sizes:
            store.put({**record, "artefact_bytes": sizes[record["key"]]})
    if sizes:
        log.info(f"export: {len(sizes)} stored replica(s) exported from their saved model into {store.root / 'artefacts'}")
    missing = [f"{r['dataset']}_seed{r['seed']}_ratio{r['ratio']:g}" for r in lacking if r["key"] not in sizes]
    if missing:
        log.warning(f"warning: export: {len(missing)} stored replica(s) have no artefact in the store and no saved "
                    f"model to export one from: {', '.join(missing)}; resume=false export=true trains this job's "
                    "replicas again")
