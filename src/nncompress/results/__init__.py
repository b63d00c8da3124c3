"""Per-replica results: experiment keys, what a stored record must hold, the resumable store, the v1 migration."""
from .keys import (applied, config_key, experiment, experiment_key, prunes, quantizes, replica_config, target_defaults,
                   without_defaults)
from .migration import upgrade, upgrade_record, upgraded
from .schema import foreign_target, is_key, known_targets, problem
from .store import MARKER, ResultStore, describe, dumps, jsonl_records, read_jsonl, write_jsonl
from .table import format_table

__all__ = ["applied", "config_key", "experiment", "experiment_key", "prunes", "quantizes", "replica_config",
           "target_defaults", "without_defaults", "upgrade", "upgrade_record", "upgraded", "foreign_target", "is_key", "known_targets",
           "problem", "MARKER", "ResultStore", "describe", "dumps", "jsonl_records", "read_jsonl", "write_jsonl",
           "format_table"]  # fmt: skip
