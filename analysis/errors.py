"""The workbench's user-facing error: the command line prints its message on one line and exits 2."""


class WorkbenchError(Exception):
    """Bad input or missing data; the message alone tells the user what to fix."""
