"""The project's one error tree.

Every error the project raises on purpose derives from :class:`DucatsError`.
``retriable`` says whether the same call may succeed later (a service that is
down or still starting) or never will (bad input, bad configuration, a wrong
password). Per-package ``errors.py`` files extend this tree; callers catch
classes, never messages.

Exit codes of the ``ducats`` command (README, "Exit codes"): 0 done; 1 a
permanent failure (fix something, then run again); 75 (EX_TEMPFAIL from
sysexits.h) a retriable one: the same command may succeed later unchanged.
"""
from __future__ import annotations

import re

EXIT_PERMANENT = 1
EXIT_RETRIABLE = 75


class DucatsError(Exception):
    """Root of the project's errors."""

    retriable: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_RETRIABLE if self.retriable else EXIT_PERMANENT


class ConfigError(DucatsError):
    """The settings or the environment are wrong; fix them and start again."""


class PrerequisiteMissing(DucatsError):
    """A tool or package the command needs is not installed."""


class ServiceUnavailable(DucatsError):
    """Kafka, PostgreSQL or Redis did not answer (down, restarting, unreachable)."""

    retriable = True


class ServiceRefused(DucatsError):
    """A service answered but refused us in a way retrying cannot cure: a wrong
    password, a database or table that does not exist, a missing permission."""


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log or print)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
