"""Binding to libspandsp: DTMF, tones, caller ID, echo cancelling, fax."""
