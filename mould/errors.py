"""Exceptions for expected failures: bad files, bad arguments, impossible requests.

The CLI turns a :class:`MouldError` into a one-line message and exit code 2, with no traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MouldError(Exception):
    """An expected failure whose message is fit to show a user as it is."""


class InputError(MouldError, ValueError):
    """A file or argument given by the user is unusable; the message names it and says why."""
