"""The one exception type for user mistakes; cli.py turns it into one sentence and exit code 2."""


class StyleLabError(Exception):
    """A mistake the user can fix (bad path, unknown layer, missing weights...).

    The message is one human sentence; it is printed without a traceback.
    """
