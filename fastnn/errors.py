"""The one exception type fastnn raises for problems the user can fix.

Every bad input (a malformed file, wrong shapes, NaN, labels out of range, a
corrupt download, an invalid option) is reported as a :class:`FastnnError`
whose message names the problem.  It subclasses :class:`ValueError` so that
code written against scikit-learn conventions catches it as usual; the CLI
prints its message on one line and exits non-zero instead of a traceback.
"""


class FastnnError(ValueError):
    """A problem with the user's input, data or options, with a readable message."""
