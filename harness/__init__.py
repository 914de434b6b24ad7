"""Compatibility test harness for the Backend.AI webserver <-> FastTrack pipeline authentication contract."""

__version__ = "0.1.0"
