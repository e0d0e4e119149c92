"""GarbageCollectionHooks: the start-up heap is frozen during a run, and only during a run."""

from __future__ import annotations

import atexit
import gc
import weakref
from collections.abc import Iterator

import pytest

from churn_mlops import hooks as hooks_module
from churn_mlops.hooks import (
    YOUNG_GENERATION_THRESHOLD,
    GarbageCollectionHooks,
    relax_garbage_collection,
    restore_garbage_collection,
)
from churn_mlops.settings import HOOKS

DEFAULT_THRESHOLDS = (700, 10, 10)  # CPython's


class Node:
    """A container object that can take part in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def default_collector() -> Iterator[None]:
    """CPython's default thresholds and no relaxation on record; the test's state undone after."""
    saved, saved_record = gc.get_threshold(), hooks_module._thresholds_before
    hooks_module._thresholds_before = None
    gc.set_threshold(*DEFAULT_THRESHOLDS)
    yield
    hooks_module._thresholds_before = saved_record  # what importing settings.py put on record
    gc.set_threshold(*saved)


@pytest.fixture
def hook(default_collector: None) -> Iterator[GarbageCollectionHooks]:
    gc.unfreeze()
    yield GarbageCollectionHooks()
    gc.unfreeze()  # never leave the test process frozen, whatever the test did


def test_project_settings_register_the_hook():
    assert any(isinstance(h, GarbageCollectionHooks) for h in HOOKS)


def test_the_start_up_heap_is_frozen_for_the_run_and_handed_back_after(hook):
    long_lived = Node()
    hook.before_pipeline_run()
    frozen = gc.get_freeze_count()
    assert frozen > 1000, "the objects alive before the run must leave the collector's scans"
    assert gc.is_tracked(long_lived)
    hook.after_pipeline_run()
    assert gc.get_freeze_count() == 0


def _scanned(objects: list[object]) -> bool:
    """Whether the collector still scans ``objects`` (frozen ones are in no generation)."""
    ids = {id(o) for o in gc.get_objects()}
    return all(id(o) in ids for o in objects)


def test_creating_the_context_already_freezes_the_start_up_heap(hook):
    start_up = [Node() for _ in range(10)]
    hook.after_context_created()
    assert gc.get_freeze_count() > 1000
    assert not _scanned(start_up)
    catalog_objects = [Node() for _ in range(10)]  # made between context and run
    assert _scanned(catalog_objects)
    hook.before_pipeline_run()
    assert not _scanned(catalog_objects)
    hook.after_pipeline_run()
    assert gc.get_freeze_count() == 0
    assert _scanned(start_up) and _scanned(catalog_objects)


def test_a_failed_run_hands_the_heap_back_too(hook):
    hook.before_pipeline_run()
    assert gc.get_freeze_count() > 0
    hook.on_pipeline_error()
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_the_run_are_still_collected(hook):
    hook.before_pipeline_run()
    a, b = Node(), Node()
    a.other, b.other = b, a
    probe = weakref.ref(a)
    del a, b
    gc.collect()
    assert probe() is None, "objects created by the run must stay collectable"
    hook.after_pipeline_run()


def test_cycles_left_before_a_notebook_rerun_are_collected_after_it(hook):
    a, b = Node(), Node()
    a.other, b.other = b, a
    probe = weakref.ref(a)
    hook.before_pipeline_run()  # the cycle is still referenced here: it is frozen
    del a, b
    gc.collect()
    assert probe() is not None, "a frozen object is not scanned during the run"
    hook.after_pipeline_run()
    gc.collect()
    assert probe() is None, "after the run the collector sees it again"


def test_the_exit_handler_is_registered_once_per_session(hook):
    before = atexit._ncallbacks()
    for _ in range(3):
        hook.after_context_created()
        hook.before_pipeline_run()
        hook.after_pipeline_run()
    assert atexit._ncallbacks() == before + 1


def test_relaxing_raises_only_the_young_threshold_and_restoring_puts_it_back(default_collector):
    relax_garbage_collection()
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)
    relax_garbage_collection()  # settings.py, then the hook: the first values are kept
    restore_garbage_collection()
    assert gc.get_threshold() == DEFAULT_THRESHOLDS
    restore_garbage_collection()  # nothing on record: no change
    assert gc.get_threshold() == DEFAULT_THRESHOLDS


def test_a_higher_threshold_set_by_the_user_is_kept(default_collector):
    gc.set_threshold(500_000, 20, 20)
    relax_garbage_collection()
    assert gc.get_threshold() == (500_000, 20, 20)
    restore_garbage_collection()
    assert gc.get_threshold() == (500_000, 20, 20)


@pytest.mark.parametrize("end", ["after_pipeline_run", "on_pipeline_error"])
def test_the_run_is_relaxed_and_the_thresholds_come_back_when_it_ends(hook, end):
    relax_garbage_collection()  # what importing settings.py did
    hook.after_context_created()
    hook.before_pipeline_run()
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    getattr(hook, end)()
    assert gc.get_threshold() == DEFAULT_THRESHOLDS
    hook.before_pipeline_run()  # a notebook runs the session again
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    hook.after_pipeline_run()
    assert gc.get_threshold() == DEFAULT_THRESHOLDS


def test_fewer_collections_run_while_relaxed(default_collector):
    """What the threshold buys: 90,000 new containers trigger at most one young collection."""

    def young_collections(allocate: int) -> int:
        before = gc.get_stats()[0]["collections"]
        kept = [[] for _ in range(allocate)]
        del kept
        return gc.get_stats()[0]["collections"] - before

    assert young_collections(90_000) >= 100  # at CPython's default of 700
    relax_garbage_collection()
    assert young_collections(90_000) <= 1
    restore_garbage_collection()
