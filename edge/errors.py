"""User-facing errors: the CLI prints their message as one line, never a traceback."""


class AgeGenderError(Exception):
    """A problem the user can fix (a missing file, bad data, a wrong model)."""
