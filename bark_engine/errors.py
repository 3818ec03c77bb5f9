"""Exceptions the engine raises for expected failures.

Each message is one line a user can act on; the CLI prints it and exits 2.
"""

from __future__ import annotations


class BarkError(Exception):
    """Base class for expected, user-facing engine errors."""


class BadInputError(BarkError, ValueError):
    """Text, options or a path the caller gave cannot be used."""


class VoiceError(BarkError, ValueError):
    """A voice name or voice prompt file is unknown, unsafe or malformed."""


class CheckpointError(BarkError):
    """A checkpoint file is missing, unsafe to load, or does not fit the model."""


class WeightsUnavailableError(CheckpointError):
    """Weights are not on disk and cannot be downloaded (offline or no network)."""


class Cancelled(BarkError):
    """Generation stopped because the caller set the cancel event."""
