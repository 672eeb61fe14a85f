"""The project's one error tree.

Every error the project raises on purpose derives from :class:`DucatsError`.
``retriable`` says whether the same call may succeed later (a service that is
still starting) or never will (bad input, bad configuration). Per-package
``errors.py`` files extend this tree; callers catch classes, never messages.
"""
from __future__ import annotations


class DucatsError(Exception):
    """Root of the project's errors."""

    retriable: bool = False


class ConfigError(DucatsError):
    """The settings or the environment are wrong; fix them and start again."""


class PrerequisiteMissing(DucatsError):
    """A tool or package the command needs is not installed."""


class ServiceUnavailable(DucatsError):
    """Kafka, PostgreSQL or Redis did not answer."""

    retriable = True
