"""A tiny service built on the kit, to test the kit the way services use it."""
