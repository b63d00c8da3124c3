"""What a job knows of how Hydra runs it: its values of what its sweep varies, and whether it runs beside other jobs
of its sweep. Outside a Hydra job (a test, a notebook) neither: a run alone."""
import os
from pathlib import Path

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"  # one job after another


def swept() -> list[tuple[str, str]]:
    """The job's values of what its sweep varies, as (key, value) in the order given: `("ratio", "0.01")`,
    `("experiment", "table3")` for `+experiment=table3`; none for a run alone. A sweep varies the keys the command
    line sweeps (`ratio=0.01,0.1`, as Hydra's `multirun.yaml` in the sweep folder keeps it), those its sweeper's
    params sweep (a preset's, Optuna's search space) and every key a part of the union sweeper sets."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return []
    hydra, parse = HydraConfig.get(), OverridesParser.create().parse_overrides
    asked = Path(hydra.sweep.dir) / "multirun.yaml"  # Optuna's sweeper writes none: its params say it all
    sweep = OmegaConf.load(asked).hydra if asked.exists() else hydra
    params = [f"{k}={v}" for k, v in (hydra.sweeper.get("params") or {}).items()]
    varied = {o.key_or_group for o in parse([*OmegaConf.to_container(sweep.overrides.task), *params])
              if o.is_sweep_override()}  # fmt: skip
    parts = sweep.sweeper.get("parts")
    varied |= {o.key_or_group for part in (OmegaConf.to_container(parts) if parts else []) for o in parse(part)}
    mine = parse(OmegaConf.to_container(hydra.overrides.task))
    return [(o.key_or_group, o.get_value_element_as_str()) for o in mine if o.key_or_group in varied and not o.is_delete()]


def parallel() -> tuple[int, int] | None:
    """(the job's number, how many jobs run at once) for a job of a multirun whose launcher runs jobs side by side
    (joblib, submitit); None for a single run and for the basic launcher's jobs, one after another."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN or hydra.launcher.get("_target_") == BASIC_LAUNCHER:
        return None
    at_once = hydra.launcher.get("n_jobs")  # joblib's; -1: as many as there are CPUs
    return int(hydra.job.num), at_once if isinstance(at_once, int) and at_once > 0 else os.cpu_count() or 1
