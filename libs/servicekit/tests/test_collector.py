"""The collector paused around a stretch of code, and enabled again after it (or left off)."""

import gc

import pytest

from servicekit.collector import gc_paused


def test_paused_inside_and_enabled_after_even_on_error():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError
    assert gc.isenabled()


def test_nested_and_already_disabled():
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner one does not enable it under the outer one
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_overlapping_pauses_keep_it_paused_until_the_last_ends():
    # Two batches at once: the first to begin ends before the other; the collector stays paused.
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


async def test_a_service_start_up_freezes_what_was_loaded_before_it_ended(kit_settings, identity):
    from kitapp.app import create_app

    from servicekit.testing import running_service

    class Kept:
        pass

    kept = Kept()  # as uvicorn's and the lifespan's objects are, built before start-up ends
    async with running_service(create_app, kit_settings, identity):
        assert not any(o is kept for o in gc.get_objects())
