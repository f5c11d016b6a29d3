"""The package version, in one place: the ground floor every wing may read (files record which losslab wrote them)."""

__version__ = "0.1.0"
