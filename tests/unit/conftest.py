"""Hypothesis without its per-example deadline (200 ms): a unit test asserts no timing, and
a busy machine (a lab tearing down beside it) can stretch a correct example past it."""

from hypothesis import settings

settings.register_profile("hongbao", deadline=None)
settings.load_profile("hongbao")
