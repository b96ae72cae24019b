"""The one exception type for user mistakes; the command-line tools (stylelab.cli) turn it into one sentence and exit code 2."""


class StyleLabError(Exception):
    """A mistake the user can fix (bad path, unknown layer, missing weights...).

    The message is one human sentence; it is printed without a traceback.
    """
