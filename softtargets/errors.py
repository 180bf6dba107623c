"""User-facing errors: the CLI prints the message as one line and exits with code 2."""

import reprlib
import textwrap

_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 60
_BRIEF.maxlist = _BRIEF.maxdict = _BRIEF.maxtuple = _BRIEF.maxset = 4
_BRIEF.maxlevel = 2
BRIEF_WIDTH = 80


class SoftTargetsError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


def brief(value) -> str:
    """A short repr of a user's value for an error message: bounded whatever the value (a YAML alias bomb, a
    megabyte string), so a message never grows with the input."""
    text = _BRIEF.repr(value)
    return text if len(text) <= BRIEF_WIDTH else text[:BRIEF_WIDTH - 3] + "..."


def one_line(text: str, width: int = 200) -> str:
    """An exception's message folded into one bounded line (the CLI prints errors as one line)."""
    return textwrap.shorten(str(text)[: 4 * width], width, placeholder=" ...") or "(no message)"
