"""Exceptions of the harness."""


class GuardError(RuntimeError):
    """An implementation disagreed with the baseline before timing: the suite is aborted."""


class SkipSuite(Exception):
    """The suite cannot run here (a required module is missing); the message says why."""
