"""User-facing errors: the CLI prints the message as one line and exits with code 2."""


class SoftTargetsError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""
