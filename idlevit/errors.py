"""The one exception type for bad user input: CLIs print it in one line and exit 2."""


class UserError(Exception):
    """Bad input the user can fix (missing file, wrong shape, unknown option).

    The message names the problem and the fix in one line; CLIs print it without a
    traceback and exit with status 2.
    """
