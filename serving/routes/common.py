"""Helpers every route module shares: the resources, JSON answers, the read gate."""
from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from schemas.ducat_id import ducat_int
from schemas.errors import MalformedDucatId
from serving.errors import ApiError
from serving.observability import client_of
from serving.resources import Resources

JSON = "application/json"


class AnyText(Convertor[str]):
    """``{name:text}``: the rest of the path, whatever it holds. Starlette's ``:path`` is
    ``.*``, which stops at a line break, and its route pattern ends in ``$``, which matches
    before a final one: an id the contracts admit, such as ``"t-1\n"``, was looked up as
    ``"t-1"`` (404 for what was just created; schemathesis ST302). ``[\s\S]+`` takes
    every character, "/" and line breaks included."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyText())


def res(request: Request) -> Resources:
    resources: Resources = request.app.state.res
    return resources


def json(body: bytes | Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer from bytes serialized earlier, or from an object (orjson)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(data, status_code=status, media_type=JSON, headers=headers)


def ducat_number(ducat_id: str) -> int:
    """The ledger's integer for a canonical id; 400 for anything else."""
    try:
        return ducat_int(ducat_id)
    except MalformedDucatId as exc:
        raise ApiError(400, str(exc), code="bad_ducat_id") from None


async def read_gate(request: Request) -> None:
    """Reads are open unless DUCATS_API_READS_NEED_KEY; counted when DUCATS_API_READ_LIMIT is set."""
    r = res(request)
    s = r.settings
    if not s.api_reads_need_key and r.limits.read is None:
        return
    client = r.api_keys.require(request) if s.api_reads_need_key else r.api_keys.client_of(request)
    await r.limits.check("read", client or client_of(request))
