"""The error every command raises for a refusal the user can act on."""


class CliError(Exception):
    """A user-facing error: printed without a traceback."""
