"""A sweeper that runs several basic sweeps, one after another, as one multirun.

Hydra's basic sweeper takes the cartesian product of its parameters, so it cannot run sweeps of different
shapes together (the MLP tables sweep datasets and methods, the ConvNet grid sweeps kernels and channels).
Each part here is swept exactly as `python src/train.py -m <part overrides> <command line>` would sweep it
alone: with the `hydra.sweeper.params` of the preset the part names, then the part's own overrides, then
the command line's, each later one winning; the `+experiment=...` of the command line is the part's.
"""
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import read_write


@dataclass
class UnionSweeperConf:
    _target_: str = "hydra_plugins.nncompress_sweepers.union_sweeper.UnionSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[dict[str, str]] = None
    parts: list[list[str]] = field(default_factory=list)
    dry_run: bool = False  # print every job's overrides and run none


class UnionSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[dict] = None, parts=(), dry_run: bool = False):
        super().__init__(max_batch_size, params)
        self.parts, self.dry_run = [list(p) for p in parts], dry_run

    def setup(self, *, hydra_context, task_function, config) -> None:
        # Jobs compose with their part's basic sweeper, which has none of this sweeper's keys: drop command-line
        # overrides of them (already applied here) from what the jobs inherit.
        with read_write(config.hydra.overrides):
            config.hydra.overrides.hydra = [o for o in config.hydra.overrides.hydra if not o.startswith("hydra.sweeper.")]
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def split_arguments(self, overrides: list[Override], max_batch_size: Optional[int]) -> list[list[list[str]]]:
        """Every part's jobs, part after part, in batches of `max_batch_size` (the base sweeper's hook)."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        command_line = [o for o in overrides if o.key_or_group != "experiment"]
        jobs = []
        for own in (one for part in self.parts for one in per_preset(parser, parser.parse_overrides(part))):
            fixed = [o.input_line for o in own + command_line if not o.is_sweep_override()]
            params = self.hydra_context.config_loader.load_sweep_config(self.config, fixed).hydra.sweeper.get("params")
            preset = parser.parse_overrides([f"{k}={v}" for k, v in (params or {}).items()])
            jobs += BasicSweeper.split_arguments(preset + own + command_line, None)[0]
        return list(self.split_overrides_to_chunks(jobs, max_batch_size))

    def sweep(self, arguments: list[str]) -> Any:
        if not self.dry_run:
            return super().sweep(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + arguments)  # as the base sweep() parses them
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]
        for job in jobs:
            print(" ".join(job))
        print(f"{len(jobs)} jobs")
        return []


def per_preset(parser: OverridesParser, part: list[Override]) -> list[list[Override]]:
    """A part sweeping `+experiment` as one part per preset, so each preset's jobs get its own sweeper params and
    the part's fixed overrides are checked against the config that preset composes (`method.saliency.hessian_at`
    exists under `table5`'s OBD, not under the default method)."""
    preset = next((o for o in part if o.key_or_group == "experiment" and o.is_sweep_override()), None)
    if preset is None:
        return [part]
    key, rest = preset.input_line.split("=", 1)[0], [o for o in part if o is not preset]
    return [parser.parse_overrides([f"{key}={value}"]) + rest for value in preset.sweep_string_iterator()]
