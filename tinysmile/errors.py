"""Errors meant for users: the CLI prints their message (no traceback) and exits 2."""


class TinysmileError(Exception):
    """A problem with the user's input or environment, stated in one line."""

    exit_code = 2


class UnsupportedModelError(TinysmileError):
    """The model uses something the compiler does not support."""
