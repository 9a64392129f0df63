"""The one error type a user sees: the CLI prints its message on one line and exits with code 2."""


class NasError(ValueError):
    """A bad input a user can fix: the message names the value and what is allowed."""
