"""User-facing errors: the CLI prints their message as one line, never a traceback."""


class AgeGenderError(Exception):
    """A problem the user can fix (a missing file, bad data, a wrong model)."""


class PictureError(AgeGenderError, ValueError):
    """A picture array the runtime cannot take as it is (empty, float, wrong shape)."""
