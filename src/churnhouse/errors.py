"""Errors that retrying cannot fix: bad configuration or input that breaks the contract.

Tasks turn these into an immediate failure (no retries); anything else
(a network blip, a locked file) is retried with back-off.
"""


class PermanentError(Exception):
    """Retrying will not help: the input or the configuration is wrong."""


class ContractError(PermanentError, ValueError):
    """A source breaks its contract (a missing field or table the models need)."""
