"""GarbageCollectionHooks: the start-up heap is frozen during a run, and only during a run."""

from __future__ import annotations

import atexit
import gc
import weakref
from collections.abc import Iterator

import pytest

from churn_mlops.hooks import GarbageCollectionHooks
from churn_mlops.settings import HOOKS


class Node:
    """A container object that can take part in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def hook() -> Iterator[GarbageCollectionHooks]:
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
