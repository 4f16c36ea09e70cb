"""Skillepunkt firmware: the application that runs on the telephony edge appliance."""

__version__ = "0.1.0"
