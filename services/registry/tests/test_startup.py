"""Startup: what the process keeps for its life is out of the cyclic collector's scans."""

import gc

from registry.app import freeze_what_startup_loaded, spec


async def test_startup_freezes_what_was_loaded_after_the_app_was_built():
    class Kept:
        pass

    kept = Kept()  # as the lifespan's and uvicorn's objects are, built after create_app
    assert freeze_what_startup_loaded in spec().on_startup
    await freeze_what_startup_loaded(None)  # type: ignore[arg-type]
    assert not any(o is kept for o in gc.get_objects())
