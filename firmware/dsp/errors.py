"""The one error type of the DSP binding."""

from __future__ import annotations


class DspError(Exception):
    """A DSP library is missing, a call into it failed, or its input was unusable."""


class ProfileError(DspError):
    """A country profile is unknown, unreadable or out of bounds."""
