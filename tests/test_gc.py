"""Bulk work hides the objects that existed before it from the garbage collector, and gives them back."""

from __future__ import annotations

import gc

from metaextract.store.bulk import bulk


def test_bulk_freezes_what_exists_and_gives_it_back() -> None:
    assert gc.get_freeze_count() == 0
    with bulk():
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the imports of this process
        with bulk():  # nested (a submit inside a bigger job): the outer one unfreezes
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # what the work creates is still collected
    assert gc.get_freeze_count() == 0


def test_bulk_leaves_a_freeze_of_the_caller_alone() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with bulk():
            pass
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
