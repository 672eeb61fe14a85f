"""API keys for writes (and for reads with DUCATS_API_READS_NEED_KEY=true).

The server keeps only SHA-256 digests (DUCATS_API_KEYS, comma-separated hex;
`ducats api-key` prints a new key and its digest). A key is 32 random bytes,
so a fast hash is enough: there is nothing to brute-force that a slow one
would protect, and checking costs a microsecond. Digests are compared in
constant time. A client sends ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``; no keys configured means writes are refused.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from ducats.errors import ConfigError
from serving.errors import ApiError

_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and the digest to configure: (key, sha256 hex)."""
    key = "dk_" + secrets.token_urlsafe(32)
    return key, digest(key)


@dataclass(frozen=True, slots=True)
class ApiKeys:
    digests: tuple[str, ...]

    @classmethod
    def parse(cls, configured: str) -> ApiKeys:
        digests = tuple(d.strip().lower() for d in configured.split(",") if d.strip())
        bad = [d for d in digests if not _DIGEST.fullmatch(d)]
        if bad:
            raise ConfigError("DUCATS_API_KEYS holds something that is not a SHA-256 hex digest "
                              f"({bad[0][:12]}...); fix: configure digests, as `ducats api-key` prints them")
        return cls(digests)

    def client_of(self, request: Request) -> str | None:
        """The key's id (its digest's first 12 hex digits) if the request carries a valid key;
        None if it carries none. Raises 403 for a wrong key."""
        presented = _presented(request)
        if presented is None:
            return None
        d = digest(presented)
        if any(hmac.compare_digest(d, known) for known in self.digests):
            return d[:12]
        raise ApiError(403, "the API key is not valid", code="forbidden")

    def require(self, request: Request) -> str:
        """The key id of an authorized caller; 401 without a key."""
        client = self.client_of(request)
        if client is None:
            detail = ("this needs an API key: send Authorization: Bearer <key>" if self.digests else
                      "writes are disabled: no API keys are configured (DUCATS_API_KEYS)")
            raise ApiError(401, detail, code="unauthorized", headers={"WWW-Authenticate": "Bearer"})
        return client


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "Authorization must be 'Bearer <key>'", code="unauthorized",
                           headers={"WWW-Authenticate": "Bearer"})
        return value.strip()
    return request.headers.get("x-api-key")
