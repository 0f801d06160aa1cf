"""Re-export, kept for one release: the config checks live in `eapo.schema.checks`."""

from eapo.schema.checks import check_int, check_lengths, check_one_of, check_real  # re-export: the old path

__all__ = ["check_int", "check_lengths", "check_one_of", "check_real"]
