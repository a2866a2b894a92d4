"""glibc malloc tuning at start-up (chimevoice/malloc.py)."""
from __future__ import annotations

import platform

import pytest

from chimevoice.malloc import ARENA_MAX, MMAP_THRESHOLD, tune_malloc

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_tuning_applies_the_arena_limit_and_a_fixed_mmap_threshold() -> None:
    tuning = tune_malloc({})
    assert tuning.applied
    assert (tuning.arena_max, tuning.mmap_threshold) == (ARENA_MAX, MMAP_THRESHOLD)


@glibc
def test_the_environment_wins_over_the_tuning() -> None:
    tuning = tune_malloc({"MALLOC_ARENA_MAX": "8", "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert tuning.applied
    assert (tuning.arena_max, tuning.mmap_threshold) == (None, None)
