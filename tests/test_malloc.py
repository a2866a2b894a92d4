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


def test_malloc_usage_sees_a_block_allocated_and_freed():
    from chimevoice.malloc import malloc_usage
    before = malloc_usage()
    if not before:
        pytest.skip("not glibc >= 2.33")
    block = bytearray(16 * 1024 * 1024)          # above the mmap threshold: mapped on its own
    during = malloc_usage()
    del block
    after = malloc_usage()
    assert during["malloc_in_use_bytes"] - before["malloc_in_use_bytes"] >= 16 * 1024 * 1024
    assert during["malloc_held_bytes"] >= during["malloc_in_use_bytes"]
    assert during["malloc_in_use_bytes"] - after["malloc_in_use_bytes"] >= 16 * 1024 * 1024
